"""Hostile and strange input (tests/data/hostile/corpus.jsonl), through the core and Telegram.

For every input: no crash, a short answer in the resident's language, and nothing wrong stored.
The corpus is made by tools/make_hostile_corpus.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

from sqlalchemy import func, select

from bot.channels.telegram import CHANNEL
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.settings import Settings
from bot.core import Assistant
from bot.delivery import TokenBucket
from bot.messages import Incoming
from bot.models import OutboxMessage, Request, Resident, Turn
from bot.wiring import installed_channels
from tests.fake_bot_api import FakeBotAPI

CORPUS = [json.loads(line) for line in
          (Path(__file__).parent / "data" / "hostile" / "corpus.jsonl").read_text().splitlines()]
LANGUAGES = ("zh_Hans", "zh_Hant", "en", "mn", "bo", "ug")
SCRIPTS = {
    "zh_Hans": r"[\u4e00-\u9fff]",
    "zh_Hant": r"[\u4e00-\u9fff]",
    "en": r"[A-Za-z]",
    "mn": r"[\u0400-\u04ff]",
    "bo": r"[\u0f00-\u0fff]",
    "ug": r"[\u0600-\u06ff]",
}
# Controls, zero-width space, bidi marks, embeddings, overrides and isolates are never stored
# (ZWJ/ZWNJ between letters are kept on purpose: they matter in Arabic-script words).
UNSAFE_STORED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
MAX_ANSWER = 2500  # characters in all of a turn's replies: a short answer, not an echo


def test_the_corpus_is_large_and_varied():
    kinds = {item["kind"] for item in CORPUS}
    assert len(CORPUS) >= 200 and kinds == {"text", "button", "media", "update"}


def _resident(session, chat_id: str, language: str, channel: str) -> None:
    session.add(Resident(channel=channel, channel_user_id=chat_id, language=language,
                         flow="menu", step="main", slots={}, offered=[]))


def _check_stored(db, assistant) -> None:
    with db.session() as session:
        assert session.execute(select(func.count(Request.id))).scalar_one() == 0
        for resident in session.execute(select(Resident)).scalars():
            assert resident.flow is None or resident.flow in assistant.flows
            assert isinstance(resident.offered, list)
            assert all(isinstance(p, str) and len(p) <= 200 for p in resident.offered)
        for text, in session.execute(select(Turn.text).where(Turn.direction == "in")):
            assert text is None or not UNSAFE_STORED.search(text), repr(text[:80])


def test_every_hostile_text_and_button_through_the_core(config, db):
    assistant = Assistant(config, db)
    items = [item for item in CORPUS if item["kind"] in ("text", "button")]

    async def scenario():
        with db.session() as session:
            for i, _ in enumerate(items):
                _resident(session, f"h{i}", LANGUAGES[i % 6], "terminal")
        for i, item in enumerate(items):
            language, user = LANGUAGES[i % 6], f"h{i}"
            await assistant.handle(Incoming("terminal", user, "resume"))
            if item["kind"] == "text":
                incoming = Incoming("terminal", user, "text", text=item["text"])
            else:
                incoming = Incoming("terminal", user, "button", payload=item["data"])
            replies = await assistant.handle(incoming)
            label = f"{item['id']!r} ({language})"
            assert replies, label
            assert sum(len(r.text) for r in replies) <= MAX_ANSWER, label
            assert {r.language for r in replies} == {language}, label
            assert re.search(SCRIPTS[language], replies[0].text), label

    asyncio.run(scenario())
    _check_stored(db, assistant)


def _raw_update(item: dict, chat_id: int, language: str) -> dict:
    user = {"id": chat_id, "is_bot": False, "first_name": "H", "language_code": language}
    text = json.dumps(item["update"]).replace('"CHAT"', str(chat_id)).replace('"USER"',
                                                                             json.dumps(user))
    return json.loads(text)


def test_every_hostile_input_through_telegram(config, db, fake):
    assistant = Assistant(config, db, channels=installed_channels())
    expected: dict[int, tuple[str, bool, str]] = {}

    async def scenario():
        channel = TelegramChannel(config, db, assistant,
                                  Settings(token=fake.token, api_root=fake.root),
                                  push_interval=0.2)
        channel.sender.bucket = TokenBucket(2000, 2000)  # the fake has no global limit
        with db.session() as session:
            for i, _ in enumerate(CORPUS):
                _resident(session, str(10_000 + i), LANGUAGES[i % 6], CHANNEL)
        for i, _ in enumerate(CORPUS):  # each resident is shown the menu first
            await assistant.handle(Incoming(CHANNEL, str(10_000 + i), "resume"))
        await channel.start()
        try:
            await _wait_idle(fake, db, {10_000 + i: 1 for i in range(len(CORPUS))})
            for i, item in enumerate(CORPUS):
                chat, language = 10_000 + i, LANGUAGES[i % 6]
                code = language.replace("_", "-").lower()
                answered = True
                if item["kind"] == "text":
                    fake.send_text(chat, item["text"], code)
                elif item["kind"] == "button":
                    fake.press(chat, item["data"], code)
                elif item["kind"] == "media":
                    fake._push({"message": fake._message(chat, code, **item["content"])})
                else:
                    fake._push(_raw_update(item, chat, code))
                    answered = item["answered"]
                expected[chat] = (item["id"], answered, language)
            await _wait_idle(fake, db, {c: 2 for c, (_, a, _) in expected.items() if a})
            # Still alive after all of it.
            sentinel = 99_999
            fake.send_text(sentinel, "/start", "en")
            await _wait_idle(fake, db, {sentinel: 1})
        finally:
            await channel.stop()

    asyncio.run(scenario())
    for chat, (name, answered, language) in expected.items():
        got = fake.sent_to(chat)[1:]
        if not answered:
            assert got == [], f"{name!r}: answered {got}"
            continue
        assert got, f"{name!r}: no answer"
        text = "\n".join(s.text or "" for s in got)
        assert len(text) <= MAX_ANSWER, name
        assert re.search(SCRIPTS[language], text), f"{name!r} not in {language}: {text[:200]}"
    _check_stored(db, assistant)
    with db.session() as session:
        statuses = set(session.execute(select(OutboxMessage.status)).scalars())
    assert statuses == {"sent"}


async def _wait_idle(fake: FakeBotAPI, db, want: dict[int, int], timeout: float = 120.0):
    """Until every chat has at least its count of messages and the outbox has nothing left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        if any(len(fake.sent_to(chat)) < count for chat, count in want.items()):
            continue
        with db.session() as session:
            busy = session.execute(select(OutboxMessage.id).where(
                OutboxMessage.status.in_(("pending", "sending")))).first()
        if busy is None:
            await asyncio.sleep(0.5)
            return
    missing = {c: len(fake.sent_to(c)) for c, n in want.items() if len(fake.sent_to(c)) < n}
    raise AssertionError(f"chats without an answer: {list(missing)[:10]} ({len(missing)})")
