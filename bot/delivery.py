"""Sends the outbox to a channel: in order per chat, within the channel's rate limits, retrying.

The channel supplies a Transport; it raises `RetryLater` (wait as told, e.g. Telegram's 429),
`TransientError` (the request did not get through: back off and retry), `Unconfirmed` (it got
through but the answer did not come back: most likely delivered, so not resent) or
`PermanentError` (the chat is gone or the bot was blocked: give up on this message, keep it).
Nothing is dropped silently:
a message that keeps failing stays in the outbox, pending with a growing delay, then failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bot.db import Database
from bot.keys import open_message
from bot.models import OutboxMessage, utcnow
from bot.services import outbox

log = logging.getLogger(__name__)

IN_FLIGHT = 4  # rows claimed and on their way at once (see Sender._slot)


class RetryLater(Exception):
    def __init__(self, seconds: float):
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


class TransientError(Exception):
    """Worth trying again soon (network error, timeout, server error)."""


class PermanentError(Exception):
    """Will never succeed (chat not found, bot blocked, message rejected)."""


class Unconfirmed(Exception):
    """The request reached the server but no answer came back (a read timeout): it was most
    likely delivered, and sending it again could deliver it twice, so it is not resent."""


class Transport(Protocol):
    channel: str

    async def send(self, row: OutboxMessage) -> None: ...


class TokenBucket:
    """At most `rate` events a second on average, bursts of at most `burst`."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def delay(self) -> float:
        """Takes a token; returns how long to wait before using it."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    async def take(self) -> None:
        wait = self.delay()
        if wait > 0:
            await asyncio.sleep(wait)

    def replay(self, ages: list[float]) -> None:
        """As if a token had been taken `ages` seconds ago for each: a sender taking over from
        one that stopped (another worker) goes on from its pace instead of a fresh burst."""
        if not ages:
            return
        now = time.monotonic()
        # A full bucket before the oldest of them, then each taken at its time, refilling in
        # between, then the refill up to now.
        self.tokens, self.stamp = self.burst, now - max(ages)
        for age in sorted(ages, reverse=True):
            stamp = now - age
            self.tokens = min(self.burst, self.tokens + (stamp - self.stamp) * self.rate) - 1
            self.stamp = stamp
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now


class Sender:
    """Delivers outbox rows of one channel.

    Telegram's limits: about 30 messages a second overall, about one a second per chat (a short
    burst of a few, such as a reply and its voice note, is allowed).
    """

    def __init__(
        self,
        db: Database,
        transport: Transport,
        *,
        rate: float = 30.0,
        chat_rate: float = 1.0,
        chat_burst: float = 3.0,
        inline_retries: int = 3,
        backoff: float = 0.5,
        data_dir: Path | None = None,
    ):
        """`data_dir`: where the server secret lives, to open sealed rows (bot/keys.py)."""
        self.db = db
        self.data_dir = data_dir
        self.transport = transport
        self.channel = transport.channel
        self.bucket = TokenBucket(rate, max(1.0, rate))
        self.chat_rate, self.chat_burst = chat_rate, chat_burst
        self.inline_retries = inline_retries
        self.backoff = backoff
        self._chat_buckets: dict[str, TokenBucket] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._paused_until = 0.0
        # Whether this process may send now (with several workers: while it is the elected
        # one, see bot/cluster.py); checked before each message is claimed.
        self.may_send: Callable[[], bool] = lambda: True
        self._in_flight: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self.sent = 0
        self.failed = 0

    def recover(self) -> int:
        """When this sender starts (or takes over from another worker's): rows a dead process
        was sending become unconfirmed (never sent twice), and what was sent in the last
        seconds counts against the rate limits, as if this sender had sent it."""
        window = max(1.0, self.chat_burst / self.chat_rate) + 1.0
        with self.db.session() as session:
            count = outbox.recover_interrupted(session, self.channel)
            recent = outbox.recently_sent(session, self.channel, utcnow(), window)
        if count:
            log.warning("%d outgoing message(s) were interrupted while sending: unconfirmed",
                        count)
        self.bucket.replay([age for _, age in recent])
        chats: dict[str, list[float]] = {}
        for chat_id, age in recent:
            chats.setdefault(chat_id, []).append(age)
        for chat_id, ages in chats.items():
            self._chat_bucket(chat_id).replay(ages)
        return count

    async def flush_chat(self, chat_id: str, due: bool = False) -> None:
        """Sends the chat's pending messages, oldest first, until none is due. `due`: the
        caller knows one is (a turn has just queued it), so the first look is saved."""
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            try:
                while True:
                    if not self.may_send() or (not due and not self._has_due(chat_id)):
                        return
                    # Wait for the rate limits before claiming: a row is `sending` only while
                    # it is really on its way, so a crash leaves at most those unconfirmed.
                    await self._chat_bucket(chat_id).take()
                    await self._wait_pause()
                    await self.bucket.take()
                    async with self._slot():
                        with self.db.session() as session:
                            row, due = outbox.claim_next(session, self.channel, chat_id,
                                                         utcnow())
                            if row is None:
                                return  # not due yet, or another sender has it
                            session.expunge(row)
                            row.attempts = (row.attempts or 0) + 1
                        if self.data_dir is not None:  # detached: the text is never stored
                            row.payload = open_message(self.data_dir, row.payload)
                        if not await self._send(row):
                            return  # the chat's next messages wait behind this one
            finally:
                if not lock._waiters:
                    self._chat_locks.pop(chat_id, None)

    def _slot(self) -> asyncio.Semaphore:
        """One of IN_FLIGHT places for a claimed row: a row is `sending` from its claim until
        its answer, and one killed in that state is never resent (it may have arrived), so
        few are in that state at once, however many chats are due (a semaphore of the
        running loop)."""
        loop = asyncio.get_running_loop()
        if self._in_flight is None or self._in_flight[0] is not loop:
            self._in_flight = (loop, asyncio.Semaphore(IN_FLIGHT))
        return self._in_flight[1]

    def _has_due(self, chat_id: str) -> bool:
        with self.db.session() as session:
            row = outbox.next_for_chat(session, self.channel, chat_id)
            return row is not None and row.next_attempt_at <= utcnow()

    def _chat_bucket(self, chat_id: str) -> TokenBucket:
        return self._chat_buckets.setdefault(chat_id,
                                             TokenBucket(self.chat_rate, self.chat_burst))

    async def _send(self, row: OutboxMessage) -> bool:
        """Sends one claimed row (already paced); True if it was sent (or given up), False to
        retry later."""
        tries = 0
        while True:
            if tries or self._paused_until > time.monotonic():  # a retry is paced again
                await self._wait_pause()
                await self.bucket.take()
            try:
                await self.transport.send(row)
            except RetryLater as exc:
                log.warning("channel %s asked to wait %.1f s", self.channel, exc.seconds)
                self._paused_until = max(self._paused_until, time.monotonic() + exc.seconds)
                await self._wait_pause()
                await self.bucket.take()
                continue
            except Unconfirmed:
                log.warning("outgoing message %d: no answer from the channel; not resent",
                            row.id)
                with self.db.session() as session:
                    outbox.mark_unconfirmed(session, row.id)
                self.sent += 1
                return True
            except PermanentError as exc:
                log.warning("outgoing message %d failed for good: %s", row.id, type(exc).__name__)
                with self.db.session() as session:
                    outbox.fail(session, row.id, _describe(exc))
                self.failed += 1
                return True
            except (TransientError, asyncio.TimeoutError, OSError) as exc:
                tries += 1
                if tries < self.inline_retries:
                    await asyncio.sleep(self.backoff * 2 ** (tries - 1))
                    continue
                with self.db.session() as session:
                    status = outbox.release(session, row.id, _describe(exc), row.attempts)
                log.warning("outgoing message %d not sent (%s): %s", row.id,
                            type(exc).__name__, status)
                if status == "failed":
                    self.failed += 1
                    return True
                return False
            except Exception as exc:  # a bug in rendering: keep the row, do not loop on it
                log.exception("outgoing message %d could not be sent", row.id)
                with self.db.session() as session:
                    outbox.fail(session, row.id, _describe(exc))
                self.failed += 1
                return True
            with self.db.session() as session:
                outbox.mark_sent(session, row.id)
            self.sent += 1
            return True

    async def _wait_pause(self) -> None:
        wait = self._paused_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    async def drain_once(self, limit: int = 500) -> int:
        """Flushes every chat with something due now; returns how many chats were served."""
        if not self.may_send():
            return 0
        with self.db.session() as session:
            chats = outbox.due_chats(session, self.channel, utcnow(), limit)
        if chats:
            await asyncio.gather(*(self.flush_chat(chat) for chat in chats))
        return len(chats)

    async def run(self, stop: asyncio.Event, interval: float = 1.0,
                  before: Callable[[], object] | None = None) -> None:
        """Keeps the outbox moving until `stop` is set. `before` runs ahead of each round."""
        while not stop.is_set():
            try:
                if before is not None:
                    result = before()
                    if asyncio.iscoroutine(result):
                        await result
                await self.drain_once()
            except Exception:
                log.exception("outbox round failed; trying again")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except asyncio.TimeoutError:
                pass


def _describe(exc: BaseException) -> str:
    """An error for the outbox row: its class, never a message text."""
    return type(exc).__name__
