"""What a voice may be given: scripts each voice reads, speakable text, clip names."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from pathlib import Path

from babel.messages.pofile import read_po

CLIP_ID_MAX = 60

# Formatting characters a voice cannot say: bidi marks, embeddings and isolates, zero-width
# characters, soft hyphen and byte-order mark. Emoji and other symbols are dropped by category.
UNSPEAKABLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufe00-\ufe0f\ufeff]")
SENTENCE_END = re.compile(r"[.!?。！？؟]")

# Unicode blocks of the scripts named in config.VOICE_SCRIPTS (the letters of any other block
# count as "Other", which no voice reads). Sorted by start for bisect.
_SCRIPT_BLOCKS = sorted([
    (0x0041, 0x005A, "Latin"), (0x0061, 0x007A, "Latin"), (0x00AA, 0x00AA, "Latin"),
    (0x00BA, 0x00BA, "Latin"), (0x00C0, 0x02AF, "Latin"), (0x1E00, 0x1EFF, "Latin"),
    (0x2C60, 0x2C7F, "Latin"), (0xA720, 0xA7FF, "Latin"), (0xFF21, 0xFF3A, "Latin"),
    (0xFF41, 0xFF5A, "Latin"),
    (0x0370, 0x03FF, "Greek"), (0x1F00, 0x1FFF, "Greek"),
    (0x0400, 0x052F, "Cyrillic"), (0x1C80, 0x1C8F, "Cyrillic"), (0x2DE0, 0x2DFF, "Cyrillic"),
    (0xA640, 0xA69F, "Cyrillic"),
    (0x0600, 0x06FF, "Arabic"), (0x0750, 0x077F, "Arabic"), (0x08A0, 0x08FF, "Arabic"),
    (0xFB50, 0xFDFF, "Arabic"), (0xFE70, 0xFEFF, "Arabic"),
    (0x0F00, 0x0FFF, "Tibetan"),
    (0x1800, 0x18AF, "Mongolian"), (0x11660, 0x1167F, "Mongolian"),
    (0x2E80, 0x2FDF, "Han"), (0x3005, 0x3007, "Han"), (0x3021, 0x3029, "Han"),
    (0x3038, 0x303B, "Han"), (0x3400, 0x4DBF, "Han"), (0x4E00, 0x9FFF, "Han"),
    (0xF900, 0xFAFF, "Han"), (0x20000, 0x3134F, "Han"),
])
_BLOCK_STARTS = [start for start, _, _ in _SCRIPT_BLOCKS]


def script_of(char: str) -> str | None:
    """The script of a letter ("Han", "Latin", "Other", …); None for what every voice can say
    (digits 0-9, punctuation, spaces, combining accents)."""
    category = unicodedata.category(char)
    if category[0] not in "LMN" or "0" <= char <= "9" or "\u0300" <= char <= "\u036f":
        return None
    code = ord(char)
    i = bisect_right(_BLOCK_STARTS, code) - 1
    if i >= 0 and code <= _SCRIPT_BLOCKS[i][1]:
        return _SCRIPT_BLOCKS[i][2]
    return None if category[0] == "N" else "Other"


def scripts_in(text: str) -> Counter[str]:
    """How many letters of each script the text has."""
    return Counter(script for script in map(script_of, text) if script)


def can_read(scripts: tuple[str, ...], text: str) -> bool:
    """Whether a voice reading `scripts` can say `text`: most letters in scripts[0], none in a
    script outside `scripts`. Text without letters (digits, punctuation) is readable by all."""
    counts = scripts_in(text)
    if not counts:
        return True
    if any(script not in scripts for script in counts):
        return False
    return counts.most_common(1)[0][0] == scripts[0]


def speakable(text: str, max_characters: int) -> str:
    """The text as a voice should get it: no formatting characters or symbols, a full stop
    after a line without one (a pause, where espeak-ng would run the lines together), spaces
    collapsed, cut at a sentence end (or a space) before `max_characters`."""
    text = UNSPEAKABLE.sub("", unicodedata.normalize("NFC", text))
    text = "".join(
        ch for ch in text
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs", "Cn", "So", "Sk")
    )
    lines = [" ".join(line.split()) for line in text.split("\n")]
    text = " ".join(
        line if unicodedata.category(line[-1]).startswith("P") else f"{line}."
        for line in lines if line
    )
    if len(text) <= max_characters:
        return text
    cut = text[:max_characters]
    ends = [m.end() for m in SENTENCE_END.finditer(cut)]
    if ends and ends[-1] > max_characters // 2:
        return cut[: ends[-1]].strip()
    space = cut.rfind(" ")
    return (cut[:space] if space > max_characters // 2 else cut).strip()


def clip_id(msgid: str) -> str:
    """A stable file name for a message's recording: its ASCII words in lower case joined by
    "-", at most 60 characters; a long or non-ASCII message ends in a hash of the whole msgid."""
    ascii_text = unicodedata.normalize("NFKD", msgid).encode("ascii", "ignore").decode()
    slug = "-".join(re.findall(r"[a-z0-9]+", ascii_text.lower()))
    digest = hashlib.sha1(msgid.encode("utf-8")).hexdigest()[:8]
    if not slug:
        return f"msg-{digest}"
    if len(slug) <= CLIP_ID_MAX:
        return slug
    head = slug[: CLIP_ID_MAX - len(digest) - 1]
    if slug[len(head)] != "-" and "-" in head:
        head = head[: head.rfind("-")]
    return f"{head.rstrip('-')}-{digest}"


def expected_clips(pot_path: Path) -> list[tuple[str, str]]:
    """(clip id, msgid) for every message of the template that can have a recording: messages
    with {fields} or plural forms change with each reply, so they are spoken by an engine.

    Raises ValueError if two messages would share a clip file name."""
    with Path(pot_path).open("rb") as f:
        catalog = read_po(f)
    clips: dict[str, str] = {}
    for message in catalog:
        if not message.id or not isinstance(message.id, str):
            continue
        if re.search(r"\{[A-Za-z_]\w*\}", message.id):
            continue
        name = clip_id(message.id)
        if name in clips and clips[name] != message.id:
            raise ValueError(
                f"{pot_path}: {clips[name]!r} and {message.id!r} share the clip name {name!r}"
            )
        clips[name] = message.id
    return sorted(clips.items())

