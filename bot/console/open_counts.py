"""The open figures' numbers (/open): requests per completed month, grid and category with
the 12345 hotline's rates, closed consultations' tallies and published notices, every small
number hidden (docs/metrics.md, "Open figures"). Rendered by bot/console/open_figures.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.console import metrics
from bot.models import Poll, Request, utcnow
from bot.services import notices as notice_service
from bot.services import polls as poll_service

SMALL = 5  # a count under this is shown as "<5"; a rate on fewer is not shown
MONTHS = 12  # completed months on the page
SHOWN_POLLS = 20
SHOWN_NOTICES = 20
RATES = ("response", "resolution", "satisfaction", "on_time")
LESS = "<5"  # a small count
HIDDEN = "×"  # a count hidden to protect a small one
NO_RATE = "—"


# --- hiding small numbers ------------------------------------------------------------------
def protect(values: dict, lines: Iterable[list], small: int = SMALL) -> dict:
    """Which cells to hide: {cell: "small" | "complement"}.

    `values` holds every cell's count; each line lists cells whose last one is the sum of the
    others (a row with its total, a column with its total). A cell under `small` is hidden
    ("small"); then, while some line has exactly one hidden cell (which its total minus the
    others would give away), the smallest other cell of that line is hidden too
    ("complement"), its total only when nothing else is left. At the end every line has no
    hidden cell or at least two."""
    lines = [list(line) for line in lines]
    hidden = {cell: "small" for cell, value in values.items() if value < small}
    changed = True
    while changed:
        changed = False
        for line in lines:
            if sum(cell in hidden for cell in line) != 1:
                continue
            inner, total = line[:-1], line[-1]
            candidates = [c for c in inner if c not in hidden] or [total]
            hidden[min(candidates, key=lambda c: values[c])] = "complement"
            changed = True
    return hidden


@dataclass(frozen=True)
class Count:
    """A published count: its value, or why it is hidden ("small", "complement")."""

    value: int
    hidden: str | None = None

    @property
    def shown(self) -> int | str:
        if self.hidden is None:
            return self.value
        return LESS if self.hidden == "small" else "hidden"

    @property
    def text(self) -> str:
        if self.hidden is None:
            return str(self.value)
        return LESS if self.hidden == "small" else HIDDEN


@dataclass(frozen=True)
class Share:
    """A published rate: shown as a whole percent unless it is hidden."""

    rate: metrics.Rate
    hidden: str | None = None

    @property
    def percent(self) -> int | None:
        if self.hidden is not None or not self.rate.whole:
            return None
        return round(self.rate.percent)

    @property
    def text(self) -> str:
        return NO_RATE if self.percent is None else f"{self.percent}%"


# --- the figures ---------------------------------------------------------------------------
@dataclass
class Row:
    grid_id: str | None  # None: outside any grid
    counts: dict[str, Count]  # category id -> requests
    total: Count
    rates: dict[str, Share]


@dataclass
class Month:
    first_day: date
    categories: list[str]
    rows: list[Row]  # the grids in config.yml's order, then outside any grid
    all_grids: Row


@dataclass
class PollResult:
    poll_id: int
    texts: dict
    options: list[dict]
    counts: dict[str, Count]
    ballots: Count
    voters: Count
    eligible: Count
    closed_at: datetime


@dataclass
class NoticeItem:
    notice_id: int
    topic: str
    texts: dict
    published_at: datetime


@dataclass
class OpenFigures:
    months: list[Month] = field(default_factory=list)
    polls: list[PollResult] = field(default_factory=list)
    notices: list[NoticeItem] = field(default_factory=list)
    category_names: dict[str, dict] = field(default_factory=dict)


def _month_start(moment: datetime, config) -> date:
    local = moment.replace(tzinfo=timezone.utc).astimezone(config.tz)
    return date(local.year, local.month, 1)


def _utc(day: date, config) -> datetime:
    """Midnight of `day` in the community's time zone, as naive UTC (the database's times)."""
    local = datetime(day.year, day.month, day.day, tzinfo=config.tz)
    return local.astimezone(timezone.utc).replace(tzinfo=None)


def _next(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def _previous(day: date) -> date:
    return date(day.year - 1, 12, 1) if day.month == 1 else date(day.year, day.month - 1, 1)


def month_table(config, requests: list[Request], first_day: date, categories: list[str],
                now: datetime) -> Month:
    """One month's table: requests per grid and category and each row's rates, hidden where
    small (protect())."""
    counted = metrics.counted(requests)
    grid_ids: list[str | None] = [g.id for g in config.grids] + [None]
    known = {g.id for g in config.grids}
    by_row: dict[str | None, list[Request]] = {g: [] for g in grid_ids}
    for r in counted:
        by_row[r.grid_id if r.grid_id in known else None].append(r)
    rows_keys = [*range(len(grid_ids)), "all"]
    values = {}
    for i, grid in enumerate(grid_ids):
        for c in categories:
            values[(i, c)] = sum(r.category_id == c for r in by_row[grid])
        values[(i, "all")] = len(by_row[grid])
    for c in categories:
        values[("all", c)] = sum(r.category_id == c for r in counted)
    values[("all", "all")] = len(counted)
    lines = [[(row, c) for c in [*categories, "all"]] for row in rows_keys]
    lines += [[(row, c) for row in rows_keys] for c in [*categories, "all"]]
    hidden = protect(values, lines)

    rates = {key: metrics.rates_of(by_row[grid], now) for key, grid in enumerate(grid_ids)}
    rates["all"] = metrics.rates_of(counted, now)
    shares: dict = {}
    for name in RATES:
        attribute = "compliance" if name == "on_time" else name
        column = {key: getattr(rates[key], attribute) for key in rows_keys}
        gone = protect({key: rate.whole for key, rate in column.items()}, [rows_keys])
        for key in rows_keys:
            shares[(key, name)] = Share(column[key], gone.get(key))

    def row(key, grid) -> Row:
        return Row(grid, {c: Count(values[(key, c)], hidden.get((key, c))) for c in categories},
                   Count(values[(key, "all")], hidden.get((key, "all"))),
                   {name: shares[(key, name)] for name in RATES})

    return Month(first_day, categories, [row(i, g) for i, g in enumerate(grid_ids)],
                 row("all", "all"))


def poll_result(session, poll: Poll) -> PollResult:
    """A closed poll's counts as participants got them, small ones hidden: under 5 ballots no
    option's count is shown; an option under 5 is "<5", with a second one hidden beside it."""
    outcome = poll_service.results(session, poll)
    values = {o["id"]: outcome.counts.get(o["id"], 0) for o in poll.options}
    values["all"] = outcome.ballots
    hidden = protect(values, [[*[o["id"] for o in poll.options], "all"]])
    return PollResult(
        poll.id, dict(poll.texts), list(poll.options),
        {o["id"]: Count(values[o["id"]], hidden.get(o["id"])) for o in poll.options},
        Count(outcome.ballots, hidden.get("all")),
        Count(outcome.voters, "small" if outcome.voters < SMALL else None),
        Count(outcome.eligible, "small" if outcome.eligible < SMALL else None),
        poll.closed_at or poll.closes_at)


def compute(session, config, now: datetime | None = None) -> OpenFigures:
    """The figures of the last MONTHS months that have ended (in the community's time zone),
    the latest closed consultations and the notices published now."""
    now = now or utcnow()
    figures = OpenFigures()
    this_month = _month_start(now, config)
    first = session.execute(select(Request.created_at).order_by(Request.created_at)
                            .limit(1)).scalar_one_or_none()
    months: list[date] = []
    day = this_month
    while first is not None and len(months) < MONTHS:
        day = _previous(day)
        if _utc(_next(day), config) <= first:
            break
        months.append(day)
    if months:
        requests = list(session.execute(
            select(Request).options(selectinload(Request.events))
            .where(Request.created_at >= _utc(months[-1], config),
                   Request.created_at < _utc(this_month, config))).scalars())
        categories = [c.id for c in config.categories]
        categories += sorted({r.category_id for r in requests} - set(categories))
        for r in requests:
            figures.category_names.setdefault(r.category_id, dict(r.category.names))
        for c in config.categories:
            figures.category_names[c.id] = dict(c.names)
        for month in months:
            start, end = _utc(month, config), _utc(_next(month), config)
            figures.months.append(month_table(
                config, [r for r in requests if start <= r.created_at < end], month,
                categories, now))
    polls = session.execute(select(Poll).where(Poll.status == "closed",
                                               Poll.tally.is_not(None))
                            .order_by(Poll.closed_at.desc(), Poll.id.desc())
                            .limit(SHOWN_POLLS)).scalars()
    figures.polls = [poll_result(session, poll) for poll in polls]
    figures.notices = [NoticeItem(n.id, n.topic, dict(n.texts), n.published_at)
                       for n in notice_service.latest(session, limit=SHOWN_NOTICES)]
    return figures
