"""Several workers on one PostgreSQL database: which one is elected, and how the others tell it
that a chat has messages to send.

Most work runs in whichever worker received it (a webhook call, a web chat message, a console
page). A few jobs must run in one worker only: sending the outbox (Telegram's limits of about
30 messages a second per bot and one a second per chat hold only if one sender paces them, and
a chat's messages leave in order only if one sender sends them), long polling (Telegram serves
one getUpdates caller per bot), pushing staff's news, the area alerts' check list, and running
updates a killed worker had accepted. `Leadership` elects that worker: on PostgreSQL it is the
holder of a session-level advisory lock on a connection of its own, which the database releases
when that connection ends, so when the elected worker stops or is killed (-9) another takes
over within `interval` seconds. On SQLite (one process only) this process is always elected.

The other workers announce a chat with new outbox rows with `NOTIFY` in the turn's own
transaction (delivered only if it commits, see `announce`); the elected worker `LISTEN`s on
its connection and sends at once, so a reply does not wait for the next outbox round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db import LEADER_LOCK, Database

log = logging.getLogger(__name__)

CHANNEL_NAME = "linli_outbox"  # PostgreSQL's notification channel (not a messenger channel)
SEPARATOR = "\t"


def announce(session: Session, channel: str, chat_id: str) -> None:
    """Tells the elected worker, once this transaction commits, that `chat_id` on `channel`
    has messages to send (PostgreSQL only; the same chat announced twice in one transaction is
    delivered once)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL_NAME, f"{channel}{SEPARATOR}{chat_id}")))


class Leadership:
    """Elects one worker among those sharing the database (see the module's docstring)."""

    def __init__(self, db: Database, interval: float = 2.0):
        self.db = db
        self.interval = interval
        self.is_leader = not db.shared
        self._fairy = None  # the election's own connection (PostgreSQL)
        self._listeners: list[Callable[[str, str], None]] = []
        self._on_elected: list[Callable[[], Awaitable[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._elected = False  # the when_elected jobs have run
        self._listening = False
        self._fd: int | None = None  # the listening connection's socket

    def when_elected(self, job: Callable[[], Awaitable[None]]) -> None:
        """`job` runs once this worker is elected (at once on SQLite)."""
        self._on_elected.append(job)

    def on_announced(self, listener: Callable[[str, str], None]) -> None:
        """`listener(channel, chat_id)` is called in the elected worker for each announcement."""
        self._listeners.append(listener)

    async def run(self, stop: asyncio.Event) -> None:
        """Tries to be elected every `interval` seconds until `stop`. The elected worker whose
        election connection breaks (a database restart) steps down at once (`is_leader` is
        False: it stops sending) and tries again like the others: one worker may be elected
        again before another notices, which is safe (a row is claimed by one sender only)."""
        try:
            while not stop.is_set():
                if self.is_leader and self.db.shared and not (
                        self._alive() if self._listening else await asyncio.to_thread(self._alive)):
                    # (While listening, the connection is the event loop's: its reader polls
                    # it. One round trip every `interval` seconds, on the loop.)
                    log.error("the elected worker's database connection broke: stepping down")
                    self.is_leader = False
                    self._close()
                if not self.is_leader:
                    await self.elect_now()
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
                except asyncio.TimeoutError:
                    pass
        finally:
            self._close()

    async def elect_now(self) -> bool:
        """One try; the `when_elected` jobs run the first time this worker is elected."""
        self._loop = asyncio.get_running_loop()
        if not self.is_leader and await asyncio.to_thread(self._try):
            log.warning("this worker is now the elected one (it sends the outbox)")
            self.is_leader = True
            self._listen()
        if self.is_leader and not self._elected:
            self._elected = True
            for job in self._on_elected:
                await job()
        return self.is_leader

    # --- PostgreSQL -------------------------------------------------------------------------
    def _try(self) -> bool:
        if not self.db.shared:
            return True
        try:
            if self._fairy is None:
                self._fairy = self.db.engine.raw_connection()
                self._fairy.detach()  # its own, never handed to anyone else by the pool
                self._fairy.dbapi_connection.autocommit = True
            cursor = self._fairy.cursor()
            cursor.execute("SELECT pg_try_advisory_lock(%s, 0)", (LEADER_LOCK,))
            elected = bool(cursor.fetchone()[0])
            cursor.close()
            return elected
        except Exception as exc:  # noqa: BLE001  (the database is away: try again later)
            log.warning("election not possible now (%s)", type(exc).__name__)
            self._close()
            return False

    def _alive(self) -> bool:
        try:
            cursor = self._fairy.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            if self._listening:  # announcements that came with the answer
                self._drain_notifications()
            return True
        except Exception as exc:  # noqa: BLE001
            log.error("the elected worker's connection broke (%s)", type(exc).__name__)
            return False

    def _listen(self) -> None:
        if not self.db.shared or not self._listeners:
            return
        connection = self._fairy.dbapi_connection
        cursor = connection.cursor()
        cursor.execute(f"LISTEN {CHANNEL_NAME}")
        cursor.close()
        self._fd = connection.fileno()
        self._loop.add_reader(self._fd, self._drain_notifications)
        self._listening = True

    def _drain_notifications(self) -> None:
        connection = self._fairy.dbapi_connection
        try:
            connection.poll()
        except Exception as exc:  # noqa: BLE001  (the next _alive steps down)
            log.warning("reading announcements failed (%s)", type(exc).__name__)
            self._unlisten()
            return
        seen = set()
        while connection.notifies:
            payload = connection.notifies.pop(0).payload
            if payload in seen:
                continue
            seen.add(payload)
            channel, _, chat_id = payload.partition(SEPARATOR)
            for listener in self._listeners:
                listener(channel, chat_id)

    def _unlisten(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
        self._fd = None

    def _close(self) -> None:
        self._unlisten()
        self._listening = False
        if self._fairy is None:
            return
        try:
            self._fairy.close()
        except Exception as exc:  # noqa: BLE001  (already broken: nothing left to close)
            log.info("closing the election's connection: %s", type(exc).__name__)
        self._fairy = None

