"""The public open figures (信息公开) at /open, /open.json and /open.csv: the numbers of
bot/console/open_counts.py in the reader's language as a page, JSON and CSV, cached, with no
login (docs/metrics.md, "Open figures"; docs/security.md)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from babel.dates import format_skeleton
from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse, Response

from bot.console.open_counts import LESS, RATES, NoticeItem, OpenFigures, PollResult, Row, compute
from bot.i18n import Translator
from bot.models import utcnow
from bot.open_texts import closed_on, month_heading, page_texts, published_on
from flows.notices import topic_name, untranslated_line
from flows.polls import option_label

CACHE_SECONDS = 300  # figures are worked out at most this often; browsers and proxies keep them
FONTS = Path(__file__).resolve().parent.parent / "channels" / "web_assets" / "static" / "fonts"
FONT_FILES = ("tibetan.woff2", "tibetan-picker.woff2", "uyghur.woff2", "uyghur-picker.woff2")
SESSION_COOKIE = "linli_console"


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
