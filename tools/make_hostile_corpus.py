"""Writes tests/data/hostile/corpus.jsonl: strange and hostile input for tests/test_hostile.py.

    .venv/bin/python tools/make_hostile_corpus.py

Each line is one input: {"id", "kind", …}. Kinds: "text" (typed text, also through the
terminal), "button" (callback data: forged, replayed, oversized), "media" (what Telegram sends
for a sticker, a file…), "update" (a raw Bot API update, malformed or unusual). The file is
committed; this script documents how it was made and regenerates it identically.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "hostile" / "corpus.jsonl"


def texts() -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    add = items.append
    # Empty and huge.
    add(("empty", ""))
    add(("spaces", "     "))
    add(("newlines", "\n\n\n"))
    add(("tabs", "\t\t"))
    for script, char in [("latin", "a"), ("han", "电"), ("cyrillic", "ж"), ("tibetan", "ཀ"),
                         ("arabic", "ئ"), ("emoji", "😀")]:
        units = len(char.encode("utf-16-le")) // 2  # Telegram counts UTF-16 code units
        add((f"4096 {script}", char * (4096 // units)))
    add(("4096 mixed words", ("lift 电梯 лифт ལིཕ་ لىفت " * 200)[:4096]))
    add(("4097 latin", "b" * 4097))
    add(("one over the limit", "c" * 1001))
    add(("exactly the limit", "d" * 1000))
    # Control characters.
    for code in [0, 1, 7, 8, 11, 12, 27, 127, 0x85, 0x9B]:
        add((f"control U+{code:04X}", f"hello{chr(code)}world"))
    add(("only controls", "".join(chr(c) for c in range(32))))
    add(("nul in command", "/start\x00evil"))
    add(("ansi escape", "\x1b[2J\x1b[31mred\x1b[0m"))
    add(("carriage returns", "line1\rline2\r\n"))
    # Zero-width and bidi.
    for code in [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x180E]:
        add((f"invisible U+{code:04X}", chr(code) * 5))
        add((f"invisible in word U+{code:04X}", f"电{chr(code)}梯坏了"))
    for code in [0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069,
                 0x200E, 0x200F, 0x061C]:
        add((f"bidi U+{code:04X}", f"{chr(code)}R-123456{chr(code)}"))
    add(("bidi override number", "\u202e654321-R"))
    add(("bidi spoofed command", "\u202e/start\u202c"))
    add(("isolate flood", "\u2067" * 500 + "x"))
    # Mixed scripts.
    add(("mixed 1", "3号楼 lift сломан ལིཕ་ بۇزۇلدى"))
    add(("mixed 2", "Мой лифт 坏了 R-123456"))
    add(("mixed 3", "ئۈچىنچى بىنا 电梯 broken!!!"))
    add(("mixed 4", "བོད་ཡིག English 中文 Монгол ئۇيغۇرچە"))
    add(("homoglyph command", "/ѕtart"))  # Cyrillic s
    add(("fullwidth command", "／start"))
    add(("fullwidth digits", "１２３"))
    add(("arabic-indic digits", "٣"))
    add(("tibetan digits", "༣༤"))
    add(("mongolian digits", "᠑"))
    add(("roman numeral", "Ⅻ"))
    add(("superscript digit", "²"))
    # Emoji floods.
    add(("emoji flood", "😀" * 2000))
    add(("zwj family flood", "👨‍👩‍👧‍👦" * 300))
    add(("flags", "🇨🇳🇲🇳🇺🇸" * 100))
    add(("skin tones", "👍🏻👍🏼👍🏽👍🏾👍🏿" * 50))
    add(("combining flood", "a" + "\u0301" * 3000))
    add(("zalgo", "ḩ̶̢̛̟̝̬͍̝̓̀̈́̋̀͋ȩ̷̨̢̛̛̝̞̩̖̫̈́̌͛̊̌͝l̷̡̝̗̙̹̉̾̂̿̐̚p̷̨̧̛͕̯̱̘̟̬̆̓̈́̉"))
    add(("variation selectors", "❤\ufe0f" * 200))
    add(("private use", "\ue000\uf8ff"))
    add(("noncharacter", "\ufffe\uffff"))
    add(("replacement char", "\ufffd" * 10))
    add(("astral", "𝕃𝕚𝕟𝕝𝕚 𠀀𠀁"))
    # SQL.
    for sql in ["'; DROP TABLE residents; --", "R-123456' OR '1'='1", "1 OR 1=1",
                "\" OR \"\"=\"", "'); DELETE FROM requests; --", "1; SELECT pg_sleep(5)",
                "admin'--", "' UNION SELECT channel_user_id FROM residents --",
                "%' AND 1=0 UNION SELECT 1 --", "R-%", "R-_____", "\\'; --"]:
        add((f"sql {sql[:20]}", sql))
    # HTML, script, markup.
    for markup in ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<b>bold</b>",
                   "&lt;b&gt;", "</textarea><svg onload=alert(1)>", "javascript:alert(1)",
                   "*bold* _it_ `code` [link](http://evil.example)", "<a href='tg://user?id=1'>x</a>",
                   "{{7*7}}", "${7*7}", "<%= 7*7 %>", "<!--", "]]>", "<?xml version='1.0'?>"]:
        add((f"markup {markup[:20]}", markup))
    # Format strings and paths.
    for fmt in ["{0}", "{tracking_number}", "{__class__}", "{0.__class__.__mro__}", "%s%s%s%n",
                "%(text)s", "{}", "{{}}", "%", "\\", "\\n", "../../etc/passwd",
                "..\\..\\windows\\win.ini", "/dev/null", "file:///etc/passwd", "C:\\", "~"]:
        add((f"format {fmt[:20]}", fmt))
    # Commands.
    for command in ["/", "//", "/start@OtherBot", "/START", "/start notice_999999",
                    "/start poll_abc", "/start " + "x" * 2000, "/menu extra words",
                    "/help@LinliTestBot", "/forget now", "/cancel/cancel", "/ start",
                    "/myrequests R-000000", "/language xx", "/voice on off", "/%s", "/<script>",
                    "/" + "a" * 300]:
        add((f"command {command[:24]}", command))
    # Numbers.
    for number in ["0", "-1", "1.5", "99999999999999999999999", "1e309", "NaN", "inf", "0x10",
                   "007", "+1", "1/2", "½", "2 3", "1,2"]:
        add((f"number {number[:20]}", number))
    # Tracking-number look-alikes.
    for tracking in ["R-000000", "R-999999", "R-" + "9" * 100, "r-12345", "R-1234567", "R123456",
                     "R－123456", "R-12345６"]:
        add((f"tracking {tracking[:20]}", tracking))
    # Very long single tokens and lines.
    add(("long url", "http://" + "a" * 3000 + ".example"))
    add(("many lines", "x\n" * 1500))
    add(("surrogate escape", "\udcff\udcfe"))
    return items


def buttons() -> list[tuple[str, str]]:
    items = []
    for data in ["", "lang:xx", "lang:", "lang:en\x00", "cat:../../etc", "cat:", "cat:emergency",
                 "intent:emergency", "intent:", "intent:forget", "rate:99", "rate:-1",
                 "rate:5", "req:R-123456", "req:' OR 1=1 --", "confirm:submit", "menu:report",
                 "menu", "cancel", "voice:on", "photo:skip", "stale:menu:report", "x" * 64,
                 "电梯" * 10, "\u202emenu", "null", "undefined", "{}", "[]", "%s", "../",
                 "loc:home", "settings:forget", "forget:yes"]:
        items.append((f"button {data[:24]!r}", data))
    return items


def media() -> list[tuple[str, dict]]:
    sticker = {"sticker": {"file_id": "stk", "file_unique_id": "stku", "type": "regular",
                           "width": 512, "height": 512, "is_animated": False,
                           "is_video": False}}
    return [
        ("sticker", sticker),
        ("video", {"video": {"file_id": "v1", "file_unique_id": "v1u", "width": 1, "height": 1,
                             "duration": 3}}),
        ("video note", {"video_note": {"file_id": "vn", "file_unique_id": "vnu", "length": 1,
                                       "duration": 2}}),
        ("audio", {"audio": {"file_id": "au", "file_unique_id": "auu", "duration": 3}}),
        ("document", {"document": {"file_id": "doc", "file_unique_id": "docu",
                                   "file_name": "../../x.exe"}}),
        ("animation", {"animation": {"file_id": "an", "file_unique_id": "anu", "width": 1,
                                     "height": 1, "duration": 1}}),
        ("contact", {"contact": {"phone_number": "+8613800000000", "first_name": "X"}}),
        ("dice", {"dice": {"emoji": "🎲", "value": 6}}),
        ("venue", {"venue": {"location": {"latitude": 1.0, "longitude": 2.0}, "title": "<b>",
                             "address": "x"}}),
        ("poll", {"poll": {"id": "p", "question": "?", "options": [], "total_voter_count": 0,
                           "is_closed": False, "is_anonymous": True, "type": "regular",
                           "allows_multiple_answers": False}}),
        ("huge voice note", {"voice": {"file_id": "big", "file_unique_id": "bigu",
                                       "duration": 3000, "file_size": 60 * 1024 * 1024}}),
        ("huge photo", {"photo": [{"file_id": "bigp", "file_unique_id": "bigpu", "width": 9000,
                                   "height": 9000, "file_size": 30 * 1024 * 1024}]}),
        ("voice with unknown file", {"voice": {"file_id": "nope", "file_unique_id": "nopeu",
                                               "duration": 2, "file_size": 100}}),
        ("location out of range", {"location": {"latitude": 1000.0, "longitude": -500.0}}),
        ("location nan-ish", {"location": {"latitude": 0.0, "longitude": 0.0}}),
        ("new chat title", {"new_chat_title": "x"}),
    ]


def updates() -> list[tuple[str, dict, bool]]:
    """(name, update without update_id, whether the chat should get an answer)."""
    return [
        ("update with nothing", {}, False),
        ("unknown update type", {"something_new": {"x": 1}}, False),
        ("channel post", {"channel_post": {"message_id": 1, "date": 0,
                                           "chat": {"id": -1001, "type": "channel"},
                                           "text": "hi"}}, False),
        ("message without sender", {"message": {"message_id": 1, "date": 0,
                                                "chat": {"id": "CHAT", "type": "private"},
                                                "text": "hi"}}, False),
        ("callback without data or message", {"callback_query": {
            "id": "cq1", "from": "USER", "chat_instance": "1"}}, False),
        ("callback with game short name", {"callback_query": {
            "id": "cq2", "from": "USER", "chat_instance": "1", "game_short_name": "g"}}, False),
        ("edited message", {"edited_message": {"message_id": 1, "date": 0, "edit_date": 1,
                                               "chat": {"id": "CHAT", "type": "private"},
                                               "from": "USER", "text": "changed"}}, True),
        ("supergroup message", {"message": {"message_id": 1, "date": 0,
                                            "chat": {"id": -100555, "type": "supergroup",
                                                     "title": "x"},
                                            "from": "USER", "text": "hi"}}, False),
        ("my chat member", {"my_chat_member": {
            "chat": {"id": "CHAT", "type": "private"}, "from": "USER", "date": 0,
            "old_chat_member": {"status": "member", "user": "USER"},
            "new_chat_member": {"status": "kicked", "user": "USER", "until_date": 0}}}, False),
        ("inline query", {"inline_query": {"id": "iq", "from": "USER", "query": "x",
                                           "offset": ""}}, False),
        ("message with unknown fields", {"message": {"message_id": 1, "date": 0,
                                                     "chat": {"id": "CHAT", "type": "private"},
                                                     "from": "USER", "text": "hello",
                                                     "future_field": {"a": [1, 2]}}}, True),
        ("reply to a message", {"message": {"message_id": 2, "date": 0,
                                            "chat": {"id": "CHAT", "type": "private"},
                                            "from": "USER", "text": "1",
                                            "reply_to_message": {"message_id": 1, "date": 0,
                                                                 "chat": {"id": "CHAT",
                                                                          "type": "private"},
                                                                 "text": "x"}}}, True),
    ]


def main() -> None:
    lines = []
    for name, text in texts():
        lines.append({"id": name, "kind": "text", "text": text})
    for name, data in buttons():
        lines.append({"id": name, "kind": "button", "data": data})
    for name, content in media():
        lines.append({"id": name, "kind": "media", "content": content})
    for name, update, answered in updates():
        lines.append({"id": name, "kind": "update", "update": update, "answered": answered})
    ids = [line["id"] for line in lines]
    assert len(ids) == len(set(ids)), "ids must be unique"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=True) + "\n")
    print(f"{len(lines)} inputs written to {OUT}")


if __name__ == "__main__":
    main()
