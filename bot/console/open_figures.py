"""The public open figures (信息公开) at /open, /open.json and /open.csv: requests per month
and grid with the 12345 hotline's rates, closed consultations' results and published notices,
with every small number hidden (docs/metrics.md, "Open figures"; docs/security.md)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from babel.dates import format_skeleton
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse, Response

from bot.console import metrics
from bot.i18n import Translator
from bot.models import Poll, Request, utcnow
from bot.open_texts import closed_on, month_heading, page_texts, published_on
from bot.services import notices as notice_service
from bot.services import polls as poll_service
from flows.notices import topic_name, untranslated_line
from flows.polls import option_label

SMALL = 5  # a count under this is shown as "<5"; a rate on fewer is not shown
MONTHS = 12  # completed months on the page
SHOWN_POLLS = 20
SHOWN_NOTICES = 20
CACHE_SECONDS = 300  # figures are worked out at most this often; browsers and proxies keep them
RATES = ("response", "resolution", "satisfaction", "on_time")
LESS = "<5"  # a small count
HIDDEN = "×"  # a count hidden to protect a small one
NO_RATE = "—"
FONTS = Path(__file__).resolve().parent.parent / "channels" / "web_assets" / "static" / "fonts"
FONT_FILES = ("tibetan.woff2", "tibetan-picker.woff2", "uyghur.woff2", "uyghur-picker.woff2")
SESSION_COOKIE = "linli_console"


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



# --- in a language -------------------------------------------------------------------------
class Reader:
    """The figures' names and dates in one language."""

    def __init__(self, config, t: Translator, figures: OpenFigures):
        self.config, self.t, self.figures = config, t, figures

    def grid(self, grid_id: str | None) -> str:
        texts = page_texts(self.t)
        if grid_id is None:
            return texts["outside"]
        if grid_id == "all":
            return texts["all_grids"]
        return self.t.name(self.config.grid(grid_id).names)

    def category(self, category_id: str) -> str:
        names = self.figures.category_names.get(category_id)
        return self.t.name(names) if names else category_id

    def month(self, first_day: date) -> str:
        return format_skeleton("yMMMM", first_day, locale=self.t.locale)

    def poll(self, result: PollResult) -> str:
        language, default = self.t.language, self.config.default_language
        return (result.texts.get(language) or result.texts[default])["question"]

    def option(self, option: dict) -> str:
        return option_label(option, self.t.language, self.config.default_language)

    def notice(self, item: NoticeItem) -> tuple[dict, bool]:
        texts = item.texts
        if self.t.language in texts:
            return texts[self.t.language], True
        return texts[self.config.default_language], False


def as_json(config, t: Translator, figures: OpenFigures) -> dict:
    reader = Reader(config, t, figures)

    def row(r: Row) -> dict:
        return {"grid": r.grid_id, "grid_name": reader.grid(r.grid_id),
                "requests": r.total.shown,
                "by_category": {c: n.shown for c, n in r.counts.items()},
                **{f"{name}_rate_percent": share.percent for name, share in r.rates.items()}}

    return {
        "community": t.name(config.community_names),
        "language": t.language,
        "time_zone": config.timezone,
        "definitions": "docs/metrics.md#open-figures",
        # No time of making: the same figures keep the same body, so the same ETag.
        "hidden": {LESS: "fewer than 5", "hidden": "5 or more, hidden to protect a number "
                   "under 5", "null": "a rate not shown: fewer than 5 to count, or hidden to "
                   "protect such a rate"},
        "categories": {c: reader.category(c) for c in figures.category_names},
        "months": [{"month": f"{m.first_day:%Y-%m}", "month_name": reader.month(m.first_day),
                    "grids": [row(r) for r in m.rows], "all_grids": row(m.all_grids)}
                   for m in figures.months],
        "consultations": [{
            "id": p.poll_id, "question": reader.poll(p),
            "closed": p.closed_at.replace(tzinfo=timezone.utc).isoformat(),
            "options": [{"id": o["id"], "label": reader.option(o),
                         "votes": p.counts[o["id"]].shown} for o in p.options],
            "votes": p.ballots.shown, "voters": p.voters.shown, "eligible": p.eligible.shown,
        } for p in figures.polls],
        "notices": [{
            "id": n.notice_id, "topic": n.topic, "topic_name": topic_name(t, config, n.topic),
            "published": n.published_at.replace(tzinfo=timezone.utc).isoformat(),
            "language": t.language if translated else config.default_language,
            "title": texts["title"], "summary": texts["summary"],
        } for n in figures.notices for texts, translated in [reader.notice(n)]],
    }


CSV_COLUMNS = ("section", "period", "area", "area_name", "item", "item_name", "measure",
               "value")


def as_csv(config, t: Translator, figures: OpenFigures) -> str:
    """One row a figure: requests (count per category and in all, the four rates in percent)
    per month and grid; votes per option of each closed consultation. Hidden: "<5", "hidden",
    or an empty rate."""
    reader = Reader(config, t, figures)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for m in figures.months:
        period = f"{m.first_day:%Y-%m}"
        for r in [*m.rows, m.all_grids]:
            area = "outside" if r.grid_id is None else r.grid_id
            for c, n in r.counts.items():
                writer.writerow(("requests", period, area, reader.grid(r.grid_id), c,
                                 reader.category(c), "requests", n.shown))
            writer.writerow(("requests", period, area, reader.grid(r.grid_id), "all", "",
                             "requests", r.total.shown))
            for name, share in r.rates.items():
                writer.writerow(("requests", period, area, reader.grid(r.grid_id), "all", "",
                                 f"{name}_rate_percent",
                                 "" if share.percent is None else share.percent))
    for p in figures.polls:
        period = f"{p.closed_at:%Y-%m-%d}"
        question = reader.poll(p)
        for o in p.options:
            writer.writerow(("consultation", period, str(p.poll_id), question, o["id"],
                             reader.option(o), "votes", p.counts[o["id"]].shown))
        for measure, count in (("votes", p.ballots), ("voters", p.voters),
                               ("eligible", p.eligible)):
            writer.writerow(("consultation", period, str(p.poll_id), question, "all", "",
                             measure, count.shown))
    return out.getvalue()


# --- the pages -----------------------------------------------------------------------------
@dataclass
class _Rendered:
    body: bytes
    etag: str
    last_modified: datetime


class OpenFigurePages:
    """/open, /open.json, /open.csv and the page's fonts, open to everyone; expects Console's
    config, db, catalogs and templates."""

    open_cache_seconds: float = CACHE_SECONDS

    def _open_state(self) -> dict:
        state = self.__dict__.get("_open")
        if state is None:
            state = self.__dict__.setdefault("_open", {"lock": threading.Lock(), "at": None,
                                                       "figures": None, "rendered": {},
                                                       "first_served": {}})
        return state

    def open_figures(self) -> OpenFigures:
        """The figures, worked out again at most every `open_cache_seconds`: the page is
        public, and each working-out reads every request of a year."""
        state = self._open_state()
        with state["lock"]:
            stamp = time.monotonic()
            if state["at"] is None or stamp - state["at"] >= self.open_cache_seconds:
                with self.db.session() as session:
                    state["figures"] = compute(session, self.config)
                state["at"], state["rendered"] = stamp, {}
            return state["figures"]

    def _open_language(self, request: HttpRequest) -> str:
        """?lang=, else the browser's first language we have, else the community's default."""
        wanted = [request.query_params.get("lang", "")]
        wanted += [part.split(";")[0].strip()
                   for part in request.headers.get("accept-language", "").split(",")]
        ids = self.config.language_ids
        for tag in wanted:
            tag = tag.replace("-", "_").lower()
            if not tag:
                continue
            if tag.startswith(("zh_tw", "zh_hk", "zh_mo", "zh_hant")):
                tag = "zh_hant"
            elif tag.startswith("zh"):
                tag = "zh_hans"
            for language in ids:
                if tag in (language.lower(), language.split("_")[0].lower()):
                    return language
        return self.config.default_language

    def _open_rendered(self, request: HttpRequest, kind: str) -> _Rendered:
        figures = self.open_figures()
        language = self._open_language(request)
        state = self._open_state()
        with state["lock"]:
            done = state["rendered"].get((kind, language))
        if done is not None:
            return done
        t = self.catalogs.translator(language)
        if kind == "json":
            body = json.dumps(as_json(self.config, t, figures), ensure_ascii=False,
                              indent=1).encode()
        elif kind == "csv":
            body = ("\ufeff" + as_csv(self.config, t, figures)).encode()  # BOM: Excel reads UTF-8
        else:
            body = self._open_html(t, figures).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        with state["lock"]:
            # Last-Modified: when this very content was first served (whole seconds); one
            # entry a kind and language, replaced when the content changes.
            first = state["first_served"].get((kind, language))
            if first is None or first[0] != etag:
                first = state["first_served"][(kind, language)] = (
                    etag, utcnow().replace(microsecond=0))
            done = state["rendered"].setdefault((kind, language),
                                                _Rendered(body, etag, first[1]))
        return done

    def _open_html(self, t: Translator, figures: OpenFigures) -> str:
        reader = Reader(self.config, t, figures)
        texts = page_texts(t)
        template = self.templates.get_template("open.html")
        return template.render(
            texts=texts, t=t, reader=reader, figures=figures, rates=RATES,
            lang=t.language.replace("_", "-"), rtl=t.rtl, language=t.language,
            community=t.name(self.config.community_names),
            languages=[(lang.id, lang.native_name) for lang in self.config.languages],
            month_heading=lambda m: month_heading(t, reader.month(m.first_day)),
            closed_on=lambda p: closed_on(t, t.date(p.closed_at)),
            published_on=lambda n: published_on(t, t.date(n.published_at)),
            untranslated=untranslated_line(t, self.config),
            config_default_tag=self.config.default_language.replace("_", "-"),
            poll_question=reader.poll,
        )

    def _open_answer(self, request: HttpRequest, kind: str, media_type: str) -> Response:
        rendered = self._open_rendered(request, kind)
        # A staff member's session cookie comes back refreshed on every answer: such an
        # answer is for their browser only, never for a shared cache.
        scope = "private" if SESSION_COOKIE in request.cookies else "public"
        headers = {
            "Cache-Control": f"{scope}, max-age={int(self.open_cache_seconds)}",
            "ETag": rendered.etag,
            "Last-Modified": format_datetime(
                rendered.last_modified.replace(tzinfo=timezone.utc), usegmt=True),
            "Vary": "Accept-Language",
        }
        if kind == "html":
            headers["Content-Language"] = self._open_language(request).replace("_", "-")
        if _not_modified(request, rendered):
            return Response(status_code=304, headers=headers)
        if kind == "csv":
            headers["Content-Disposition"] = 'inline; filename="open-figures.csv"'
        return Response(rendered.body, media_type=media_type, headers=headers)

    def open_page(self, request: HttpRequest) -> Response:
        return self._open_answer(request, "html", "text/html; charset=utf-8")

    def open_json(self, request: HttpRequest) -> Response:
        return self._open_answer(request, "json", "application/json")

    def open_csv(self, request: HttpRequest) -> Response:
        return self._open_answer(request, "csv", "text/csv; charset=utf-8")

    def open_font(self, request: HttpRequest) -> Response:
        """The web chat's Tibetan and Uyghur fonts, for this page (the console may run
        without the web chat in front of it)."""
        name = request.path_params["name"]
        if name not in FONT_FILES:
            return Response("Not found.", status_code=404, media_type="text/plain")
        return FileResponse(FONTS / name, media_type="font/woff2",
                            headers={"Cache-Control": "public, max-age=86400"})


def _not_modified(request: HttpRequest, rendered: _Rendered) -> bool:
    """If-None-Match (an ETag we gave), else If-Modified-Since not before Last-Modified."""
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in match.split(",")]
        return "*" in tags or rendered.etag in tags
    since = request.headers.get("if-modified-since")
    if since:
        try:
            moment = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if moment is None:
            return False
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return rendered.last_modified.replace(tzinfo=timezone.utc) <= moment
    return False
