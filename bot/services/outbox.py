"""The outbox: messages for residents' chats, written in the turn's transaction, sent later.

A row is claimed (pending → sending) by a conditional UPDATE, so two senders, in one process or
several, never send the same row. A row found in `sending` when a sender starts was being sent
when a process died: it becomes `unconfirmed` and is not sent again (Telegram has no way to ask
whether it arrived), so nothing reaches a resident twice; staff see the count.

Rows of kind "secret" (a ballot's receipt) lose their text once the channel has taken them or
given up: the outbox keeps who was written to, never that text (docs/polls.md).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import JSON, case, desc, func, literal, select, update
from sqlalchemy.orm import Session

from bot.models import NORMAL_PRIORITY, OutboxMessage, Resident, utcnow

MAX_ATTEMPTS = 8
ERROR_LENGTH = 200
SCRUBBED = {"text": "", "buttons": [], "scrubbed": True}


def enqueue(
    session: Session,
    resident: Resident,
    payloads: list[dict],
    *,
    kind: str = "reply",
    key: str | None = None,
    erased: bool = False,
    priority: int = NORMAL_PRIORITY,
    new_key: bool = False,
) -> list[OutboxMessage]:
    """Queues messages for the resident's chat, in order.

    A higher `priority` (an area alert) is sent before anything queued with a lower one, in
    this chat and across chats.
    With a `key`, the rows are keyed `key#0`, `key#1`, … and nothing is queued if that key was
    queued before (a notice reaches a resident once, however often publishing is run).
    `erased`: the resident has just been deleted (/forget); the rows name only their chat.
    `new_key`: the caller has made sure in this transaction that the key is new (a fan-out of
    thousands): no look-up, and the rows are flushed with the caller's next flush. The unique
    key still refuses a second copy.
    """
    if key is not None and not new_key:
        exists = session.execute(
            select(OutboxMessage.id).where(OutboxMessage.key == f"{key}#0")
        ).first()
        if exists:
            return []
    rows = [
        OutboxMessage(
            resident_id=None if erased else resident.id,
            channel=resident.channel,
            chat_id=resident.channel_user_id,
            key=f"{key}#{i}" if key is not None else None,
            kind=kind,
            priority=priority,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=utcnow(),
        )
        for i, payload in enumerate(payloads)
    ]
    session.add_all(rows)
    if not new_key:
        session.flush()
    return rows


def pending_for(session: Session, resident: Resident) -> list[OutboxMessage]:
    """The resident's messages not yet taken by their channel, oldest first."""
    return list(
        session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.resident_id == resident.id, OutboxMessage.status == "pending")
            .order_by(OutboxMessage.id)
        ).scalars()
    )


def due_chats(session: Session, channel: str, now: datetime, limit: int = 500) -> list[str]:
    """Chats of `channel` with a message due now: those with the most urgent message first
    (an area alert), then the longest waiting."""
    rows = session.execute(
        select(OutboxMessage.chat_id, func.min(OutboxMessage.id).label("first"),
               func.max(OutboxMessage.priority).label("urgency"))
        .where(
            OutboxMessage.channel == channel,
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
        )
        .group_by(OutboxMessage.chat_id)
        .order_by(desc("urgency"), "first")
        .limit(limit)
    ).all()
    return [row.chat_id for row in rows]


def next_for_chat(session: Session, channel: str, chat_id: str) -> OutboxMessage | None:
    """The chat's next pending message: the most urgent, then the oldest (due or not: a chat's
    messages of one priority keep their order)."""
    return session.execute(
        select(OutboxMessage)
        .where(
            OutboxMessage.channel == channel,
            OutboxMessage.chat_id == chat_id,
            OutboxMessage.status == "pending",
        )
        .order_by(OutboxMessage.priority.desc(), OutboxMessage.id)
        .limit(1)
    ).scalar_one_or_none()


def claim(session: Session, row_id: int) -> bool:
    """pending → sending, only if nobody else took it first."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.status == "pending")
        .values(status="sending", attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def claim_next(session: Session, channel: str, chat_id: str,
               now: datetime) -> tuple[OutboxMessage | None, bool]:
    """Claims the chat's next message if it is due (see `next_for_chat`): the row, and whether
    another is due after it (so that the sender need not ask again). Two statements."""
    rows = session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.channel == channel, OutboxMessage.chat_id == chat_id,
               OutboxMessage.status == "pending")
        .order_by(OutboxMessage.priority.desc(), OutboxMessage.id)
        .limit(2)
    ).scalars().all()
    if not rows or rows[0].next_attempt_at > now or not claim(session, rows[0].id):
        return None, False
    return rows[0], len(rows) > 1 and rows[1].next_attempt_at <= now


def mark_sent(session: Session, row_id: int) -> None:
    """Sent; a secret row's text is wiped in the same statement."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id)
        .values(status="sent", sent_at=utcnow(), last_error=None,
                payload=case((OutboxMessage.kind == "secret", literal(SCRUBBED, JSON)),
                             else_=OutboxMessage.payload))
        .execution_options(synchronize_session=False)
    )


def _scrub(session: Session, *where) -> None:
    """Wipes the text of secret rows that will not be sent again."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.kind == "secret", OutboxMessage.status != "pending", *where)
        .values(payload=SCRUBBED)
        .execution_options(synchronize_session=False)
    )


def mark_unconfirmed(session: Session, row_id: int) -> None:
    """Sent, but the channel's answer never came: counted apart, never sent again."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id)
        .values(status="unconfirmed", sent_at=utcnow(), last_error="no answer (timeout)")
        .execution_options(synchronize_session=False)
    )
    _scrub(session, OutboxMessage.id == row_id)


def release(session: Session, row_id: int, error: str, attempts: int) -> str:
    """After a failed send: back to pending with a growing delay, or failed after MAX_ATTEMPTS.

    `error` names the failure (an exception's class), never the message's text.
    """
    if attempts >= MAX_ATTEMPTS:
        status, delay = "failed", timedelta(0)
    else:
        status, delay = "pending", retry_delay(attempts)
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id)
        .values(status=status, next_attempt_at=utcnow() + delay, last_error=error[:ERROR_LENGTH])
        .execution_options(synchronize_session=False)
    )
    _scrub(session, OutboxMessage.id == row_id)
    return status


def fail(session: Session, row_id: int, error: str) -> None:
    """Gives up at once (the chat is gone, or the bot was blocked): kept for staff to see."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id)
        .values(status="failed", last_error=error[:ERROR_LENGTH])
        .execution_options(synchronize_session=False)
    )
    _scrub(session, OutboxMessage.id == row_id)


def retry_delay(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s … at most 10 minutes."""
    return timedelta(seconds=min(600, 5 * 2 ** max(0, attempts - 1)))


def recover_interrupted(session: Session, channel: str, key_prefix: str | None = None) -> int:
    """Rows left in `sending` by a process that died: `unconfirmed`, never sent twice.

    With `key_prefix`, only those keyed so (a staff command sending one notice's messages
    leaves the rows of a running `linli serve` alone).
    """
    where = [OutboxMessage.channel == channel, OutboxMessage.status == "sending"]
    if key_prefix is not None:
        where.append(keyed(key_prefix))
    result = session.execute(
        update(OutboxMessage)
        .where(*where)
        .values(status="unconfirmed", sent_at=utcnow(), last_error="process stopped while sending")
        .execution_options(synchronize_session=False)
    )
    _scrub(session, OutboxMessage.channel == channel, OutboxMessage.status == "unconfirmed")
    return result.rowcount or 0


def recently_sent(session: Session, channel: str, now: datetime,
                  seconds: float) -> list[tuple[str, float]]:
    """(chat, seconds ago) of the messages sent (or left unconfirmed) in the last `seconds`."""
    rows = session.execute(
        select(OutboxMessage.chat_id, OutboxMessage.sent_at)
        .where(OutboxMessage.channel == channel,
               OutboxMessage.status.in_(("sent", "unconfirmed")),
               OutboxMessage.sent_at > now - timedelta(seconds=seconds))
    ).all()
    return [(row.chat_id, max(0.0, (now - row.sent_at).total_seconds())) for row in rows]


def counts(session: Session, key_prefix: str | None = None,
           channel: str | None = None, first_only: bool = False) -> Counter:
    """How many messages are in each status (of those whose key starts with `key_prefix`, on
    `channel`; with `first_only`, one per delivery key: a notice and its voice note count once)."""
    query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    if key_prefix is not None:
        query = query.where(keyed(key_prefix))
    if channel is not None:
        query = query.where(OutboxMessage.channel == channel)
    if first_only:
        query = query.where(OutboxMessage.key.like("%#0"))
    return Counter({status: n for status, n in session.execute(query).all()})


def due_chats_for(session: Session, channel: str, key_prefix: str,
                  now: datetime) -> tuple[list[str], datetime | None]:
    """Chats with a pending message keyed `key_prefix…` due now, and when the next one is due
    (None when nothing keyed so is pending)."""
    pending = (OutboxMessage.channel == channel, OutboxMessage.status == "pending",
               keyed(key_prefix))
    chats = session.execute(
        select(OutboxMessage.chat_id, func.min(OutboxMessage.id).label("first"),
               func.max(OutboxMessage.priority).label("urgency"))
        .where(*pending, OutboxMessage.next_attempt_at <= now)
        .group_by(OutboxMessage.chat_id)
        .order_by(desc("urgency"), "first")
    ).all()
    following = session.execute(
        select(func.min(OutboxMessage.next_attempt_at)).where(*pending)
    ).scalar_one()
    return [row.chat_id for row in chats], following


def keyed(prefix: str):
    """A condition: the row's delivery key starts with `prefix`."""
    return OutboxMessage.key.like(_like_prefix(prefix), escape="\\")


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
