"""Sends what one staff action queued (a notice, a poll's results) to Telegram, with progress.

The messages are already in the outbox, one keyed row per resident; this only delivers the
Telegram ones now, within the rate limit, so that staff watch the push instead of waiting for
`linli serve` to pick them up. Killed half-way, it is simply run again: rows sent stay sent,
rows not yet tried are sent, and a row that was on its way when the process died is
`unconfirmed` and not sent again (docs/telegram.md), so nobody gets the message twice.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import Counter
from typing import TextIO

from bot.config import Config
from bot.db import Database
from bot.delivery import Sender, TokenBucket
from bot.models import utcnow
from bot.services import outbox

log = logging.getLogger(__name__)

STATUSES = ("sent", "failed", "pending", "unconfirmed")
MAX_WAIT = 60.0  # seconds between looks at rows waiting for a retry


def summary(counts: Counter) -> str:
    return ", ".join(f"{status} {counts.get(status, 0)}" for status in STATUSES)


def counts(db: Database, key_prefix: str, channel: str | None = None) -> Counter:
    """Residents (not rows: a voice note is a second row) per status of their first row."""
    with db.session() as session:
        return outbox.counts(session, key_prefix, channel=channel, first_only=True)


async def push_telegram(config: Config, db: Database, key_prefix: str, rate: float,
                        progress: TextIO = sys.stderr) -> Counter:
    """Delivers the Telegram rows keyed `key_prefix…`; returns the final count per status."""
    from bot.channels.telegram import CHANNEL
    from bot.channels.telegram.client import build_application
    from bot.channels.telegram.outgoing import TelegramTransport
    from bot.channels.telegram.settings import Settings
    from bot.voice import Voice

    settings = Settings.from_env()
    application = build_application(settings)
    await application.initialize()
    try:
        sender = Sender(db, TelegramTransport(application.bot, Voice(config)), rate=rate,
                        data_dir=config.data_dir)
        with db.session() as session:
            interrupted = outbox.recover_interrupted(session, CHANNEL, key_prefix)
        if interrupted:
            print(f"{interrupted} message(s) were being sent when an earlier run stopped: "
                  "unconfirmed, not sent again", file=progress)
        total = sum(counts(db, key_prefix, CHANNEL).values())
        stop = asyncio.Event()
        reporter = asyncio.create_task(_report(db, key_prefix, CHANNEL, total, stop, progress))
        try:
            while True:
                with db.session() as session:
                    chats, following = outbox.due_chats_for(session, CHANNEL, key_prefix,
                                                            utcnow())
                if chats:
                    await _paced(sender, chats, rate)
                    continue
                if following is None:
                    break
                wait = (following - utcnow()).total_seconds()
                await asyncio.sleep(min(max(wait, 0.1), MAX_WAIT))
        finally:
            stop.set()
            await reporter
        await _show_steps_again(config, db, sender, key_prefix, CHANNEL, rate)
        return counts(db, key_prefix, CHANNEL)
    finally:
        await application.shutdown()


async def _show_steps_again(config: Config, db: Database, sender: Sender, key_prefix: str,
                            channel: str, rate: float) -> None:
    """Below the push, each resident who got it sees their current step again: the last
    buttons in their chat stay the step's, so a number pressed next means what the step says
    (a push turn: see Assistant.deliver_notifications)."""
    from sqlalchemy import distinct, select

    from bot.core import Assistant
    from bot.messages import Incoming
    from bot.models import OutboxMessage
    from bot.wiring import installed_channels

    with db.session() as session:
        chats = list(session.execute(
            select(distinct(OutboxMessage.chat_id))
            .where(OutboxMessage.channel == channel, OutboxMessage.status == "sent",
                   OutboxMessage.resident_id.isnot(None), outbox.keyed(key_prefix))
        ).scalars())
    if not chats:
        return
    assistant = Assistant(config, db, channels=installed_channels())
    for chat in chats:
        await assistant.handle(Incoming(channel=channel, user_id=chat, kind="push"))
    await _paced(sender, chats, rate)


async def _paced(sender: Sender, chats: list[str], rate: float) -> None:
    """Hands chats to the Sender no faster than `rate` a second, a few at a time.

    The Sender claims a row (pending → sending) before it waits for its rate limit; given
    every chat at once it would claim them all, and a crash would leave them all unconfirmed.
    Paced here, only the rows whose requests are really on their way are `sending`.
    """
    pacer = TokenBucket(rate, 1.0)
    slots = asyncio.Semaphore(max(1, int(rate)))
    tasks = []

    async def one(chat: str) -> None:
        try:
            await sender.flush_chat(chat)
        finally:
            slots.release()

    for chat in chats:
        await slots.acquire()
        await pacer.take()
        tasks.append(asyncio.create_task(one(chat)))
    await asyncio.gather(*tasks)


async def _report(db: Database, key_prefix: str, channel: str, total: int,
                  stop: asyncio.Event, progress: TextIO, every: float = 1.0) -> None:
    last = None
    while True:
        sent = counts(db, key_prefix, channel).get("sent", 0)
        if sent != last:
            print(f"sent {sent}/{total}", file=progress, flush=True)
            last = sent
        if stop.is_set():
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except asyncio.TimeoutError:
            pass
