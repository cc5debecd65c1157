"""The channel inbox: updates a channel has received, stored before it says so, run once.

A channel stores each update (`Inbox.store`) before telling its platform it was received; the
turn it leads to marks it processed in the turn's own transaction (`claim`, called by the
Assistant), so an update is run exactly once however often it is delivered, and a process
killed in between runs it at its next start (`Inbox.unprocessed`). See bot.models.ChannelInbox.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from bot.db import Database
from bot.messages import Incoming
from bot.models import ChannelInbox, utcnow

KEEP_SECONDS = 24 * 3600  # webhook mode: processed ids kept this long against resends


class Inbox:
    """The channel_inbox table for one channel (see bot.models.ChannelInbox)."""

    def __init__(self, db: Database, channel: str):
        self.db, self.channel = db, channel

    def store(self, raw_updates: list, offset: int | None) -> set[int]:
        """Stores new updates; returns the ids not seen before. Also forgets processed ids
        below `offset`: Telegram has been told it may forget them, so they cannot come back."""
        with self.db.session() as session:
            if offset:
                session.execute(delete(ChannelInbox).where(
                    ChannelInbox.channel == self.channel, ChannelInbox.update_id < offset,
                    ChannelInbox.processed_at.is_not(None)))
            ids = {int(u["update_id"]) for u in raw_updates
                   if isinstance(u, dict) and isinstance(u.get("update_id"), int)}
            if not ids:
                return set()
            seen = set(session.execute(select(ChannelInbox.update_id).where(
                ChannelInbox.channel == self.channel,
                ChannelInbox.update_id.in_(ids))).scalars())
            fresh = ids - seen
            session.add_all(ChannelInbox(channel=self.channel, update_id=u["update_id"],
                                         payload=u, received_at=utcnow())
                            for u in raw_updates
                            if isinstance(u, dict) and u.get("update_id") in fresh)
        return fresh

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

    def unprocessed(self) -> list[dict]:
        with self.db.session() as session:
            return [row.payload for row in session.execute(
                select(ChannelInbox).where(ChannelInbox.channel == self.channel,
                                           ChannelInbox.processed_at.is_(None))
                .order_by(ChannelInbox.update_id)).scalars() if row.payload]


def claim(session: Session, incoming: Incoming) -> bool:
    """Marks the update processed in the turn's transaction; False if a turn already did."""
    result = session.execute(
        update(ChannelInbox)
        .where(ChannelInbox.channel == incoming.channel,
               ChannelInbox.update_id == incoming.event_id,
               ChannelInbox.processed_at.is_(None))
        .values(processed_at=utcnow(), payload=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        return True
    exists = session.execute(select(ChannelInbox.update_id).where(
        ChannelInbox.channel == incoming.channel,
        ChannelInbox.update_id == incoming.event_id)).first()
    return exists is None  # not stored at all (no inbox in front of this channel): run it
