"""The dashboard's figures, computed as docs/metrics.md defines them."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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

    counted = [r for r in requests if r.status != "duplicate"]
    responded = judged = 0
    for r in counted:
        window = min(RESPONSE_WINDOW, timedelta(hours=r.category.time_limit_hours))
        first = _first_response(r)
        if first is not None and first - r.created_at <= window:
            responded += 1
            judged += 1
        elif first is not None or now - r.created_at > window:
            judged += 1
    figures.response = Rate(responded, judged)
    figures.resolution = Rate(sum(r.status in ("resolved", "closed") for r in counted),
                              len(counted))
    rated = [r for r in counted if r.rating is not None]
    figures.satisfaction = Rate(sum(r.rating in SATISFIED for r in rated), len(rated))
    resolved = [r for r in counted if r.resolved_at is not None]
    if resolved:
        figures.median_hours_to_resolve = statistics.median(
            (r.resolved_at - r.created_at).total_seconds() / 3600 for r in resolved)
    kept = sum(r.resolved_at is not None and r.resolved_at <= r.due_at for r in counted
               if r.status != "rejected")
    missed = sum((r.resolved_at is not None and r.resolved_at > r.due_at)
                 or (r.resolved_at is None and r.status in OPEN_STATUSES and now > r.due_at)
                 for r in counted if r.status != "rejected")
    figures.compliance = Rate(kept, kept + missed)
    figures.requests_with_voice = Rate(
        sum(any(a.kind == "voice" for a in r.attachments) for r in counted), len(counted))

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
        .where(*incoming, Turn.intent.isnot(None)).group_by(Turn.language)).all()
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
