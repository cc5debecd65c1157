"""The dashboard's figures, computed as docs/metrics.md defines them."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.messages import NLU_UNAVAILABLE
from bot.models import Escalation, OutboxMessage, Request, Resident, Turn, utcnow
from bot.services.requests import OPEN_STATUSES

RESPONSE_WINDOW = timedelta(hours=24)
SATISFIED = (4, 5)
FALLBACK = "nlu_fallback"


@dataclass
class Rate:
    """A share: `part` of `whole`; `percent` is None when nothing can be counted yet."""

    part: int
    whole: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.part / self.whole if self.whole else None


@dataclass
class Figures:
    since: datetime
    until: datetime
    requests: int = 0
    by_category: Counter = field(default_factory=Counter)
    by_status: Counter = field(default_factory=Counter)
    # (first day of the bucket, {status: count}) for requests filed in the period
    over_time: list[tuple[datetime, Counter]] = field(default_factory=list)
    bucket_days: int = 1
    response: Rate = field(default_factory=lambda: Rate(0, 0))
    resolution: Rate = field(default_factory=lambda: Rate(0, 0))
    satisfaction: Rate = field(default_factory=lambda: Rate(0, 0))
    compliance: Rate = field(default_factory=lambda: Rate(0, 0))
    median_hours_to_resolve: float | None = None
    messages_by_language: Counter = field(default_factory=Counter)
    voice_notes: Rate = field(default_factory=lambda: Rate(0, 0))
    voice_replies: Rate = field(default_factory=lambda: Rate(0, 0))
    requests_with_voice: Rate = field(default_factory=lambda: Rate(0, 0))
    fallback_by_language: dict[str, Rate] = field(default_factory=dict)
    # Messages written to residents in the period, by outbox status: pending (waiting, maybe
    # for a retry), sent, failed (given up: bot blocked, chat gone…), unconfirmed (a crash
    # while sending: not resent, so perhaps never seen).
    deliveries: Counter = field(default_factory=Counter)
    # 吹哨报到 this calendar month (community time): escalations, and how many of them were
    # resolved within the time limit that restarted when they were escalated.
    month_start: datetime | None = None
    escalations: Rate = field(default_factory=lambda: Rate(0, 0))


def _first_response(request: Request) -> datetime | None:
    """When staff first acted on the request: its first status change by staff."""
    for event in request.events:
        if event.actor.startswith("staff:") and event.status != "submitted":
            return event.at
    return None


@dataclass
class Rates:
    """The 12345 hotline's figures and time-limit compliance of one set of requests."""

    response: Rate
    resolution: Rate
    satisfaction: Rate
    compliance: Rate


def counted(requests: list[Request]) -> list[Request]:
    """The requests the figures count: all but those marked as a duplicate (the original is
    counted instead)."""
    return [r for r in requests if r.status != "duplicate"]


def responded(request: Request, now: datetime) -> bool | None:
    """Did staff first act within the response window? None while the window is still open
    with no action (not judged yet)."""
    window = min(RESPONSE_WINDOW, timedelta(hours=request.category.time_limit_hours))
    first = _first_response(request)
    if first is not None:
        return first - request.created_at <= window
    return False if now - request.created_at > window else None


def resolved(request: Request) -> bool:
    return request.status in ("resolved", "closed")


def satisfied(request: Request) -> bool | None:
    """Rated 4 or 5; None when the resident did not rate it."""
    return None if request.rating is None else request.rating in SATISFIED


def on_time(request: Request, now: datetime) -> bool | None:
    """Resolved by its deadline? None when it is not judged: rejected, or open and not due."""
    if request.status == "rejected":
        return None
    if request.resolved_at is not None:
        return request.resolved_at <= request.due_at
    if request.status in OPEN_STATUSES and now > request.due_at:
        return False
    return None


def _rate(judgements) -> Rate:
    judged = [j for j in judgements if j is not None]
    return Rate(sum(judged), len(judged))


def rates_of(requests: list[Request], now: datetime) -> Rates:
    """The four rates of these requests (already without duplicates), as docs/metrics.md
    defines them."""
    return Rates(response=_rate(responded(r, now) for r in requests),
                 resolution=_rate(resolved(r) for r in requests),
                 satisfaction=_rate(satisfied(r) for r in requests),
                 compliance=_rate(on_time(r, now) for r in requests))


def compute(session: Session, days: int = 90, now: datetime | None = None,
            tz: tzinfo = timezone.utc) -> Figures:
    """Figures for requests filed and messages received in the last `days` days; escalations
    of this month in the community's time zone `tz`."""
    now = now or utcnow()
    since = now - timedelta(days=days)
    figures = Figures(since=since, until=now)
    requests = list(session.execute(
        select(Request).where(Request.created_at >= since).order_by(Request.created_at)
    ).scalars())
    figures.requests = len(requests)
    figures.by_category = Counter(r.category_id for r in requests)
    figures.by_status = Counter(r.status for r in requests)

    figures.bucket_days = 1 if days <= 31 else 7
    buckets: dict[int, Counter] = defaultdict(Counter)
    for r in requests:
        buckets[(r.created_at - since).days // figures.bucket_days][r.status] += 1
    count = -(-days // figures.bucket_days)
    figures.over_time = [(since + timedelta(days=i * figures.bucket_days), buckets[i])
                         for i in range(count)]

    counted_now = counted(requests)
    rates = rates_of(counted_now, now)
    figures.response, figures.resolution = rates.response, rates.resolution
    figures.satisfaction, figures.compliance = rates.satisfaction, rates.compliance
    finished = [r for r in counted_now if r.resolved_at is not None]
    if finished:
        figures.median_hours_to_resolve = statistics.median(
            (r.resolved_at - r.created_at).total_seconds() / 3600 for r in finished)
    figures.requests_with_voice = Rate(
        sum(any(a.kind == "voice" for a in r.attachments) for r in counted_now),
        len(counted_now))

    incoming = (Turn.direction == "in", Turn.at >= since)
    figures.messages_by_language = Counter({
        (language or "?"): n for language, n in session.execute(
            select(Turn.language, func.count(Turn.id)).where(*incoming)
            .group_by(Turn.language)).all()
    })
    total = sum(figures.messages_by_language.values())
    voice = session.execute(
        select(func.count(Turn.id)).where(*incoming, Turn.kind == "voice")).scalar_one()
    figures.voice_notes = Rate(voice, total)
    residents = session.execute(
        select(func.count(Resident.id), func.count(Resident.id).filter(
            Resident.voice_on.is_(True))).where(Resident.language.isnot(None))).one()
    figures.voice_replies = Rate(residents[1], residents[0])
    parsed = session.execute(
        select(Turn.language, func.count(Turn.id),
               func.count(Turn.id).filter(Turn.intent == FALLBACK))
        .where(*incoming, Turn.intent.isnot(None), Turn.intent != NLU_UNAVAILABLE)
        .group_by(Turn.language)).all()
    figures.fallback_by_language = {(language or "?"): Rate(fallback, n)
                                    for language, n, fallback in parsed}
    figures.deliveries = Counter(dict(session.execute(
        select(OutboxMessage.status, func.count(OutboxMessage.id))
        .where(OutboxMessage.created_at >= since).group_by(OutboxMessage.status)).all()))
    figures.month_start, figures.escalations = escalations_this_month(session, now, tz)
    return figures


def escalations_this_month(session: Session, now: datetime, tz: tzinfo) -> tuple[datetime, Rate]:
    """(the month's first moment in UTC, Rate(resolved in time, escalations)): an escalation
    is in time when its request was resolved after it and by the due time it set."""
    local = now.replace(tzinfo=timezone.utc).astimezone(tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = start.astimezone(timezone.utc).replace(tzinfo=None)
    rows = session.execute(
        select(Escalation.at, Escalation.due_at, Request.resolved_at)
        .join(Request, Request.id == Escalation.request_id)
        .where(Escalation.at >= start, Escalation.at <= now)).all()
    in_time = sum(resolved is not None and at <= resolved <= due for at, due, resolved in rows)
    return start, Rate(in_time, len(rows))
