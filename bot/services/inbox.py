"""The channel inbox: updates a channel has received, stored before it says so, run once.

A channel stores each update (`Inbox.store`) before telling its platform it was received; the
turn it leads to marks it processed in the turn's own transaction (`claim`, called by the
Assistant), so an update is run exactly once however often it is delivered, and a process
killed in between runs it at its next start (`Inbox.unprocessed`). See bot.models.ChannelInbox.

Several workers may share the inbox: each update is stored with its chat, and a turn claims its
update only once every older update of that chat has been run (`claim` raises `OutOfTurn`
otherwise, and the channel runs the older one first), so a resident's turns keep their order
whichever worker received each. The turns of one resident never overlap: the Assistant holds
the resident's lock for the turn (bot.core).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, aliased

from bot.db import Database
from bot.messages import Incoming
from bot.models import ChannelInbox, utcnow

KEEP_SECONDS = 24 * 3600  # webhook mode: processed ids kept this long against resends


class OutOfTurn(Exception):
    """An older update of the same chat has not been run yet: run that one first."""

    def __init__(self, chat_id: str):
        super().__init__("an older update of this chat is waiting")
        self.chat_id = chat_id


class Inbox:
    """The channel_inbox table for one channel (see bot.models.ChannelInbox).

    `chat_of(raw update)` names the chat an update belongs to (None: no resident's chat).
    """

    def __init__(self, db: Database, channel: str,
                 chat_of: Callable[[dict], str | None] = lambda raw: None):
        self.db, self.channel, self.chat_of = db, channel, chat_of

    def store(self, raw_updates: list, offset: int | None) -> set[int]:
        """Stores new updates; returns the ids not seen before. Also forgets processed ids
        below `offset`: Telegram has been told it may forget them, so they cannot come back."""
        updates = {u["update_id"]: u for u in raw_updates
                   if isinstance(u, dict) and isinstance(u.get("update_id"), int)}
        with self.db.session() as session:
            if offset:
                session.execute(delete(ChannelInbox).where(
                    ChannelInbox.channel == self.channel, ChannelInbox.update_id < offset,
                    ChannelInbox.processed_at.is_not(None)))
            if not updates:
                return set()
            rows = [{"channel": self.channel, "update_id": update_id, "payload": raw,
                     "chat_id": self.chat_of(raw), "received_at": utcnow()}
                    for update_id, raw in updates.items()]
            if session.get_bind().dialect.name == "postgresql":
                # One statement: what another worker (or an earlier call) stored is left alone.
                inserted = session.execute(
                    postgresql.insert(ChannelInbox).values(rows)
                    .on_conflict_do_nothing().returning(ChannelInbox.update_id))
                return set(inserted.scalars())
            seen = set(session.execute(select(ChannelInbox.update_id).where(
                ChannelInbox.channel == self.channel,
                ChannelInbox.update_id.in_(updates))).scalars())
            session.add_all(ChannelInbox(**row) for row in rows if row["update_id"] not in seen)
        return set(updates) - seen

    def prune(self, keep_seconds: float = KEEP_SECONDS) -> None:
        """Forgets processed updates received more than `keep_seconds` ago (webhook mode has no
        offset to say Telegram will not send them again; it resends only for minutes)."""
        cutoff = utcnow() - timedelta(seconds=keep_seconds)
        with self.db.session() as session:
            session.execute(delete(ChannelInbox).where(
                ChannelInbox.channel == self.channel, ChannelInbox.received_at < cutoff,
                ChannelInbox.processed_at.is_not(None)))

    def done(self, update_id: int) -> None:
        """For updates that led to no turn (a group, an ignored kind): processed now."""
        with self.db.session() as session:
            session.execute(update(ChannelInbox).where(
                ChannelInbox.channel == self.channel, ChannelInbox.update_id == update_id,
                ChannelInbox.processed_at.is_(None)).values(processed_at=utcnow(), payload=None))

    def unprocessed(self, received_before: datetime | None = None) -> list[dict]:
        """Updates not run yet (received before `received_before`, if given), oldest first."""
        where = [ChannelInbox.channel == self.channel, ChannelInbox.processed_at.is_(None)]
        if received_before is not None:
            where.append(ChannelInbox.received_at < received_before)
        with self.db.session() as session:
            return [row.payload for row in session.execute(
                select(ChannelInbox).where(*where)
                .order_by(ChannelInbox.update_id)).scalars() if row.payload]

    def oldest_waiting(self, chat_id: str) -> dict | None:
        """The chat's oldest update not run yet."""
        with self.db.session() as session:
            return session.execute(
                select(ChannelInbox.payload).where(
                    ChannelInbox.channel == self.channel, ChannelInbox.chat_id == chat_id,
                    ChannelInbox.processed_at.is_(None))
                .order_by(ChannelInbox.update_id).limit(1)).scalar_one_or_none()


def claim(session: Session, incoming: Incoming) -> bool:
    """Marks the update processed in the turn's transaction; False if a turn already did.

    Raises OutOfTurn while an older update of the same chat waits (stored by another worker,
    or by one that was killed): that one is run first.
    """
    older = aliased(ChannelInbox)
    result = session.execute(
        update(ChannelInbox)
        .where(ChannelInbox.channel == incoming.channel,
               ChannelInbox.update_id == incoming.event_id,
               ChannelInbox.processed_at.is_(None),
               ~select(older.update_id).where(
                   older.channel == incoming.channel,
                   older.chat_id == str(incoming.user_id),
                   older.processed_at.is_(None),
                   older.update_id < incoming.event_id).exists())
        .values(processed_at=utcnow(), payload=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        return True
    row = session.execute(select(ChannelInbox.processed_at).where(
        ChannelInbox.channel == incoming.channel,
        ChannelInbox.update_id == incoming.event_id)).first()
    if row is None:
        return True  # not stored at all (no inbox in front of this channel): run it
    if row.processed_at is None:
        raise OutOfTurn(str(incoming.user_id))
    return False
