"""Notices: staff add and publish them; residents list, search and subscribe; pushes queued.

Keyword search folds text the same way on both sides (NFKC, case, punctuation, the Tibetan
tsheg and shad, the Arabic tatweel) and looks for substrings, because Chinese and Tibetan do not
put spaces between words: "养老" must be found inside "社区养老服务".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from bot.models import Alert, Notice, NoticeSubscription, OutboxMessage, Resident, utcnow
from bot.services import outbox
from bot.specs import NoticeSpec

LATEST = 5
MAX_RESULTS = 8
_DROPPED = {"\u0640", "\u200c", "\u200d", "\u00ad"}  # tatweel, joiners, soft hyphen


class NoticeError(Exception):
    """A staff action on a notice that cannot be done; the message says why."""


def fold(text: str) -> str:
    """Text as search compares it: NFKC, case-folded, every separator one space."""
    out = []
    for ch in unicodedata.normalize("NFKC", text).casefold():
        if ch in _DROPPED:
            continue
        category = unicodedata.category(ch)
        out.append(ch if category[0] in "LMN" else " ")
    return " ".join("".join(out).split())


def matches(query: str, haystack: str) -> bool:
    """Every word of the query (split at spaces the resident typed) occurs in the text.

    A word keeps its inner separators: a Tibetan word typed as རྒན་གསོ is looked for as those
    two syllables together, not as two syllables anywhere.
    """
    words = [fold(word) for word in query.split()]
    words = [word for word in words if word]
    folded = f" {fold(haystack)} "
    return bool(words) and all(word in folded for word in words)


def add(session: Session, spec: NoticeSpec) -> Notice:
    notice = Notice(topic=spec.topic, texts=spec.texts, expires_at=spec.expires_at,
                    source=spec.source)
    session.add(notice)
    session.flush()
    return notice


def text_for(notice: Notice | Alert, language: str,
             default_language: str) -> tuple[dict, bool]:
    """The notice's (or alert's) texts in `language`, else the default language's; True if
    translated."""
    texts = notice.texts or {}
    if language in texts:
        return texts[language], True
    return texts[default_language], False


def _visible(now: datetime):
    return (Notice.published_at.is_not(None), Notice.published_at <= now,
            or_(Notice.expires_at.is_(None), Notice.expires_at > now))


def latest(session: Session, topic: str | None = None, limit: int = LATEST) -> list[Notice]:
    """Published, unexpired notices, newest first."""
    query = select(Notice).where(*_visible(utcnow()))
    if topic is not None:
        query = query.where(Notice.topic == topic)
    query = query.order_by(Notice.published_at.desc(), Notice.id.desc()).limit(limit)
    return list(session.execute(query).scalars())


def find_visible(session: Session, notice_id: int) -> Notice | None:
    return session.execute(
        select(Notice).where(Notice.id == notice_id, *_visible(utcnow()))
    ).scalar_one_or_none()


def search(session: Session, query: str, limit: int = MAX_RESULTS) -> list[Notice]:
    """Published notices whose text, in any language, holds every word of `query`."""
    found = []
    for notice in latest(session, limit=10_000):
        haystack = " \n ".join(part for texts in (notice.texts or {}).values()
                               for part in texts.values())
        if matches(query, haystack):
            found.append(notice)
            if len(found) >= limit:
                break
    return found


def topics_of(session: Session, resident: Resident) -> set[str]:
    return set(session.execute(
        select(NoticeSubscription.topic).where(NoticeSubscription.resident_id == resident.id)
    ).scalars())


def subscribe(session: Session, resident: Resident, topic: str) -> bool:
    """True if this is a new subscription."""
    if topic in topics_of(session, resident):
        return False
    session.add(NoticeSubscription(resident_id=resident.id, topic=topic))
    session.flush()
    return True


def unsubscribe(session: Session, resident: Resident, topic: str) -> bool:
    """True if there was a subscription to end."""
    result = session.execute(
        delete(NoticeSubscription).where(NoticeSubscription.resident_id == resident.id,
                                         NoticeSubscription.topic == topic)
    )
    return bool(result.rowcount)


def delivery_prefix(notice_id: int) -> str:
    """The start of the outbox keys of one notice's pushes: notice:<id>:<resident id>#0."""
    return f"notice:{notice_id}:"


def publish(session: Session, notice_id: int,
            render: Callable[[Resident, Notice], list[dict]]) -> tuple[Notice, int, int]:
    """Publishes the notice (once) and queues it for every subscriber of its topic, in their
    language. A subscriber who was queued before is skipped: running this again never sends a
    notice twice. Returns the notice, the subscribers, and how many were queued now."""
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NoticeError(f"there is no notice {notice_id}")
    now = utcnow()
    if notice.expires_at is not None and notice.expires_at <= now:
        raise NoticeError(f"notice {notice_id} expired on {notice.expires_at:%Y-%m-%d %H:%M} "
                          "UTC; it is not published")
    if notice.published_at is None:
        notice.published_at = now
    prefix = delivery_prefix(notice_id)
    queued_before = set(session.execute(
        select(OutboxMessage.resident_id).where(outbox.keyed(prefix))
    ).scalars())
    subscribers = list(session.execute(
        select(Resident)
        .join(NoticeSubscription, NoticeSubscription.resident_id == Resident.id)
        .where(NoticeSubscription.topic == notice.topic, Resident.language.is_not(None))
        .order_by(Resident.id)
    ).scalars())
    queued = 0
    for resident in subscribers:
        if resident.id in queued_before:
            continue
        outbox.enqueue(session, resident, render(resident, notice), kind="notice",
                       key=f"{prefix}{resident.id}")
        queued += 1
    return notice, len(subscribers), queued


def staff_list(session: Session) -> list[Notice]:
    return list(session.execute(select(Notice).order_by(Notice.id.desc())).scalars())
