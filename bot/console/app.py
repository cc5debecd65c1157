"""The console's Starlette app: pages, their role checks and CSRF, and the Open311 mount."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bot.config import Config
from bot.console import auth, charts, metrics, nlu_inbox
from bot.console.accounts import AccountPages
from bot.console.alerts import AlertPages
from bot.console.asgi import BodyLimit, SecureCookies, SecurityHeaders, TrustedProxies
from bot.console.clips import ClipPages
from bot.console.community import CommunityPages
from bot.console.grids import GridPages
from bot.console.i18n import StaffTranslator
from bot.console.masking import Masker
from bot.console.models import AuditEntry, NluExport, StaffUser
from bot.console.open_figures import OpenFigurePages
from bot.console.translations import TranslationPages
from bot.console.volunteers import VolunteerPages
from bot.db import Database
from bot.i18n import Catalogs
from bot.models import Attachment, Department, Request, Resident, Turn, utcnow
from bot.services import requests as service
from bot.staff import StaffActions
from bot.wiring import installed_channels

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "linli_console"
SESSION_HOURS = 12
PAGE_SIZE = 100
MAX_PAGE = 100_000  # pages of PAGE_SIZE: further than any list goes
MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL; larger ones name nothing
DAYS_CHOICES = (7, 30, 90, 365)


@dataclass(frozen=True)
class Staff:
    """The logged-in staff member, as read from the database for this request."""

    id: int
    name: str
    role: str
    language: str

    @property
    def viewer(self) -> bool:
        return self.role == "viewer"

    def may(self, role: str) -> bool:
        return auth.role_allows(self.role, role)


@dataclass(frozen=True)
class ConsoleRoute:
    """One page or action: its path, methods and the least role that may use it."""

    path: str
    endpoint: Callable
    methods: tuple[str, ...]
    role: str | None  # None: open to everyone (the login page)
    name: str
    files: int = 0  # file fields a POST may carry (a clip upload: 1)


# --- the app -------------------------------------------------------------------------------
class Console(CommunityPages, AccountPages, ClipPages, OpenFigurePages, VolunteerPages,
              GridPages, AlertPages, TranslationPages):
    """Holds config, database and templates; its methods are the pages."""

    def __init__(self, config: Config, db: Database):
        self.config = config
        self.db = db
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["urlencode"] = urlencode
        self.templates.env.globals["escalation_box"] = self.escalation_box
        self.catalogs = Catalogs(config)
        self.actions = StaffActions(config, self.catalogs, installed_channels())

    # helpers ------------------------------------------------------------------------------
    def when(self, moment: datetime | None) -> str:
        if moment is None:
            return ""
        local = moment.replace(tzinfo=timezone.utc).astimezone(self.config.tz)
        return f"{local:%Y-%m-%d %H:%M}"

    def names(self, staff: Staff):
        lang = staff.language if staff.language in self.config.language_ids else \
            self.config.default_language
        t = self.catalogs.translator(lang)

        def category(cat_id):
            try:
                return self.config.category(cat_id).names[lang]
            except KeyError:
                return cat_id

        def department(dep_id):
            try:
                return self.config.department(dep_id).names[lang]
            except KeyError:
                return dep_id

        def status(value):
            label = service.STATUS_LABELS.get(value)
            return t(label) if label else value

        def language(lang_id):
            try:
                return self.config.language(lang_id).native_name
            except KeyError:
                return lang_id or "—"

        return {"category_name": category, "department_name": department,
                "status_name": status, "language_name": language}

    def render(self, request: HttpRequest, template: str, status_code: int = 200, **context):
        staff: Staff | None = getattr(request.state, "staff", None)
        places = context.pop("places", ())  # known addresses to mask in free text
        language = staff.language if staff else _accept_language(request)
        context.update(
            request=request,
            staff=staff,
            _=StaffTranslator(language),
            lang="zh-Hans" if language == "zh_Hans" else "en",
            csrf_token=csrf_token(request),
            flash=request.session.pop("flash", None),
            when=self.when,
            mask=Masker(staff.viewer, places) if staff else None,
        )
        if staff:
            context.update(self.names(staff))
        response = self.templates.TemplateResponse(request, template, context,
                                                   status_code=status_code)
        return response

    def places(self, session, resident_ids) -> list[str]:
        """The addresses these residents gave and the places of their requests: masked
        wherever they appear in text a viewer reads."""
        ids = sorted({i for i in resident_ids if i is not None})
        if not ids:
            return []
        found = list(session.execute(select(Resident.address).where(
            Resident.id.in_(ids), Resident.address.is_not(None))).scalars())
        found += session.execute(select(Request.location_text).where(
            Request.resident_id.in_(ids), Request.location_text.is_not(None))).scalars()
        return found

    def refuse(self, request: HttpRequest, status_code: int, message: str) -> Response:
        return self.render(request, "error.html", status_code=status_code, message=message)

    # login --------------------------------------------------------------------------------
    def login_page(self, request: HttpRequest) -> Response:
        if request.method != "POST":  # GET, and HEAD (the same page without its body)
            return self.render(request, "login.html", next=_safe_next(request.query_params))
        form = request.state.form
        name = str(form.get("name", ""))
        password = str(form.get("password", ""))
        ip = request.client.host if request.client else "unknown"
        try:
            with self.db.session() as session:
                user = auth.authenticate(session, name, password, ip)
                found = Staff(user.id, user.name, user.role, user.language) if user else None
                epoch = user.session_epoch if user else 0
        except auth.Throttled:
            t = StaffTranslator(_accept_language(request))
            return self.render(request, "login.html", status_code=429, next="/",
                               error=t("Too many failed logins. Wait 15 minutes and try again."))
        if found is None:
            t = StaffTranslator(_accept_language(request))
            return self.render(request, "login.html", status_code=401,
                               next=_safe_next(form), error=t("Wrong name or password."))
        request.session.clear()  # a fresh session: nothing carried over from before login
        request.session.update(uid=found.id, epoch=epoch, csrf=secrets.token_urlsafe(32),
                               at=int(utcnow().timestamp()))
        return RedirectResponse(_safe_next(form), status_code=303)

    def logout(self, request: HttpRequest) -> Response:
        staff: Staff = request.state.staff
        with self.db.session() as session:
            user = session.get(StaffUser, staff.id)
            user.session_epoch += 1  # every session of this account ends
            auth.audit(session, staff.name, "logout", None)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # dashboard ----------------------------------------------------------------------------
    def dashboard(self, request: HttpRequest) -> Response:
        days = _int(request.query_params.get("days"), 90)
        days = days if days in DAYS_CHOICES else 90
        with self.db.session() as session:
            figures = metrics.compute(session, days=days, tz=self.config.tz)
        names = self.names(request.state.staff)
        category, status = names["category_name"], names["status_name"]
        language = names["language_name"]
        return self.render(
            request, "dashboard.html", figures=figures, days=days, days_choices=DAYS_CHOICES,
            statuses=service.STATUSES,
            over_time=charts.stacked_columns(figures.over_time, service.STATUSES, status),
            by_category=charts.bars([(category(c.id), n, str(n)) for c in self.config.categories
                                     if (n := figures.by_category.get(c.id, 0))]),
            by_status=charts.bars([(status(s), n, str(n)) for s in service.STATUSES
                                   if (n := figures.by_status.get(s, 0))]),
            by_language=charts.bars([(language(lang), n, str(n)) for lang, n in
                                     sorted(figures.messages_by_language.items())]),
            fallback=charts.bars([(language(lang), rate.percent or 0.0,
                                   f"{rate.percent or 0:.0f}% ({rate.part}/{rate.whole})")
                                  for lang, rate in sorted(figures.fallback_by_language.items())]),
        )

    # requests -----------------------------------------------------------------------------
    def request_list(self, request: HttpRequest) -> Response:
        q = request.query_params
        status = q.get("status") if q.get("status") in service.STATUSES else ""
        category = q.get("category") if q.get("category") in {
            c.id for c in self.config.categories} else ""
        department = q.get("department") if q.get("department") in {
            d.id for d in self.config.departments} else ""
        overdue = q.get("overdue") == "1"
        query = select(Request).order_by(Request.created_at.desc(), Request.id.desc()).limit(500)
        if status:
            query = query.where(Request.status == status)
        if category:
            query = query.where(Request.category_id == category)
        if department:
            query = query.where(Request.department_id == department)
        if overdue:
            query = query.where(Request.status.in_(sorted(service.OPEN_STATUSES)),
                                Request.due_at < utcnow())
        with self.db.session() as session:
            rows = [(r, service.is_overdue(r)) for r in session.execute(query).scalars()]
        return self.render(request, "requests.html", rows=rows, statuses=service.STATUSES,
                           categories=self.config.categories,
                           departments=self.config.departments,
                           chosen={"status": status, "category": category,
                                   "department": department, "overdue": overdue})

    def request_page(self, request: HttpRequest) -> Response:
        tracking_number = request.path_params["tracking_number"]
        with self.db.session() as session:
            row = service.find(session, tracking_number)
            if row is None:
                return self.refuse(request, 404, StaffTranslator(
                    request.state.staff.language)("Not found."))
            resident = session.get(Resident, row.resident_id) if row.resident_id else None
            original = session.get(Request, row.duplicate_of_id) if row.duplicate_of_id else None
            actions = list(session.execute(
                select(AuditEntry).where(AuditEntry.target == row.tracking_number)
                .order_by(AuditEntry.id)).scalars())
            allowed = [s for s in service.STATUSES
                       if s in service.STAFF_TRANSITIONS.get(row.status, ())]
            departments = [d.id for d in session.execute(
                select(Department).where(Department.active.is_(True))).scalars()]
            return self.render(
                request, "request.html", r=row, resident=resident, original=original,
                overdue=service.is_overdue(row), allowed=allowed, actions=actions,
                departments=departments,
                places=[row.location_text, *self.places(session, [row.resident_id])])

    def change_status(self, request: HttpRequest) -> Response:
        staff: Staff = request.state.staff
        form = request.state.form
        tracking_number = request.path_params["tracking_number"]
        status = str(form.get("status", ""))
        t = StaffTranslator(staff.language)
        try:
            with self.db.session() as session:
                event = self.actions.change_status(
                    session, tracking_number, status, actor=f"staff:{staff.name}",
                    note=str(form.get("note", "")) or None,
                    department_id=str(form.get("department", "")) or None,
                    duplicate_of=str(form.get("duplicate_of", "")) or None,
                )
                auth.audit(session, staff.name, "request.status", event.request.tracking_number,
                           {"from": event.previous_status, "to": status,
                            "department": event.request.department_id,
                            "note": bool(event.note)})
                tracking_number = event.request.tracking_number
            request.session["flash"] = t("Status changed.")
        except service.RequestError as exc:
            request.session["flash"] = str(exc)
        return RedirectResponse(f"/requests/{quote(tracking_number)}", status_code=303)

    def assign_department(self, request: HttpRequest) -> Response:
        """Moves a request to another department without changing its status.

        The resident's history is not touched (no status event): the audit log keeps the move.
        """
        staff: Staff = request.state.staff
        tracking_number = request.path_params["tracking_number"]
        department = str(request.state.form.get("department", ""))
        t = StaffTranslator(staff.language)
        with self.db.session() as session:
            row = service.find(session, tracking_number)
            if row is None:
                return self.refuse(request, 404, t("Not found."))
            target = session.get(Department, department)
            if target is None or not target.active:
                request.session["flash"] = f"unknown department {department!r}"
            elif row.department_id == department:
                request.session["flash"] = t("No change: that is already its department.")
            else:
                auth.audit(session, staff.name, "request.department", row.tracking_number,
                           {"from": row.department_id, "to": department})
                row.department_id, row.updated_at = department, utcnow()
                request.session["flash"] = t("Department assigned.")
            tracking_number = row.tracking_number
        return RedirectResponse(f"/requests/{quote(tracking_number)}", status_code=303)

    def mark_duplicate(self, request: HttpRequest) -> Response:
        form = dict(request.state.form)
        form["status"] = "duplicate"
        request.state.form = form
        return self.change_status(request)

    def media(self, request: HttpRequest) -> Response:
        """A resident's photo or voice note, only from under <data dir>/media."""
        kind, item_id = request.path_params["kind"], request.path_params["item_id"]
        with self.db.session() as session:
            if kind == "attachment":
                row = session.get(Attachment, item_id)
                relative, mime = (row.path, row.mime) if row else (None, None)
            elif kind == "turn":
                row = session.get(Turn, item_id)
                ok = row is not None and row.direction == "in" and row.kind in ("photo", "voice")
                relative, mime = (row.payload, None) if ok else (None, None)
            else:
                relative, mime = None, None
        path = _media_path(self.config.data_dir, relative)
        if path is None:
            return self.refuse(request, 404, StaffTranslator(
                request.state.staff.language)("Not found."))
        response = FileResponse(path, media_type=mime or _guess_mime(path))
        response.headers["Cache-Control"] = "private, no-store"
        return response

    # conversations ------------------------------------------------------------------------
    def conversations(self, request: HttpRequest) -> Response:
        q = request.query_params
        language = q.get("language") if q.get("language") in self.config.language_ids else ""
        intent = q.get("intent") if q.get("intent") in (
            *nlu_inbox.INTENTS, nlu_inbox.FALLBACK) else ""
        try:
            since, until = _day(q.get("from")), _day(q.get("to"))
        except ValueError:
            return self.refuse(request, 400, StaffTranslator(request.state.staff.language)(
                "Give dates as YYYY-MM-DD, between 1900 and 9998."))
        low, fallback = q.get("low") == "1", q.get("fallback") == "1"
        handed_over = q.get("handover") == "1"
        where = [Turn.direction == "in"]
        if language:  # the resident's language now (their first turns may predate the choice)
            where.append(Resident.language == language)
        if intent:
            where.append(Turn.intent == intent)
        if since:
            where.append(Turn.at >= self._utc(since))
        if until:
            where.append(Turn.at < self._utc(until + timedelta(days=1)))
        if low:
            where.append(Turn.confidence < nlu_inbox.LOW_CONFIDENCE)
        if fallback:
            where.append(Turn.intent == nlu_inbox.FALLBACK)
        if handed_over:  # residents who wrote to staff ("talk to staff")
            where.append(Turn.flow == "handover")
        with self.db.session() as session:
            rows = session.execute(
                select(Resident, func.count(Turn.id), func.max(Turn.at))
                .join(Turn, Turn.resident_id == Resident.id)
                .where(*where)
                .group_by(Resident.id)
                .order_by(func.max(Turn.at).desc())
                .limit(PAGE_SIZE)
            ).all()
        return self.render(request, "conversations.html", rows=rows,
                           languages=self.config.language_ids,
                           intents=(*nlu_inbox.INTENTS, nlu_inbox.FALLBACK),
                           chosen={"language": language, "intent": intent,
                                   "from": q.get("from", "") if since else "",
                                   "to": q.get("to", "") if until else "",
                                   "low": low, "fallback": fallback,
                                   "handover": handed_over})

    def _utc(self, day) -> datetime:
        local = datetime(day.year, day.month, day.day, tzinfo=self.config.tz)
        return local.astimezone(timezone.utc).replace(tzinfo=None)

    def transcript(self, request: HttpRequest) -> Response:
        resident_id = request.path_params["resident_id"]
        page = _page(request)
        if page is None:
            return self.refuse(request, 404, StaffTranslator(
                request.state.staff.language)("No such page."))
        with self.db.session() as session:
            resident = session.get(Resident, resident_id)
            if resident is None:
                return self.refuse(request, 404, StaffTranslator(
                    request.state.staff.language)("Not found."))
            turns = list(session.execute(
                select(Turn).where(Turn.resident_id == resident_id)
                .order_by(Turn.at.desc(), Turn.id.desc())
                .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).scalars())
            more = len(turns) > PAGE_SIZE
            turns = list(reversed(turns[:PAGE_SIZE]))
            return self.render(request, "transcript.html", resident=resident, turns=turns,
                               page=page, more=more, low=nlu_inbox.LOW_CONFIDENCE,
                               places=self.places(session, [resident.id]))

    # NLU inbox ----------------------------------------------------------------------------
    def nlu_page(self, request: HttpRequest) -> Response:
        language = request.query_params.get("language")
        language = language if language in self.config.language_ids else ""
        with self.db.session() as session:
            turns = nlu_inbox.inbox(session, language or None)
            waiting = nlu_inbox.waiting(session)
            texts = {t.id: t.text for t in session.execute(
                select(Turn).where(Turn.id.in_([w.turn_id for w in waiting]))).scalars()} \
                if waiting else {}
            exports = list(session.execute(
                select(NluExport).order_by(NluExport.id.desc()).limit(20)).scalars())
            places = self.places(session, [t.resident_id for t in turns])
            removals = nlu_inbox.removals(session)
            return self.render(request, "nlu.html", turns=turns, waiting=waiting, texts=texts,
                               exports=exports, removals=removals, intents=nlu_inbox.INTENTS,
                               languages=self.config.language_ids, chosen=language,
                               threshold=nlu_inbox.LOW_CONFIDENCE, places=places)

    def nlu_label(self, request: HttpRequest) -> Response:
        staff: Staff = request.state.staff
        form = request.state.form
        turn_id = request.path_params["turn_id"]
        t = StaffTranslator(staff.language)
        dismiss = request.url.path.endswith("/dismiss")
        try:
            with self.db.session() as session:
                nlu_inbox.label(session, turn_id,
                                None if dismiss else str(form.get("intent", "")),
                                None if dismiss else str(form.get("example", "")), staff.name)
            request.session["flash"] = t("Dismissed.") if dismiss else t("Labelled.")
        except nlu_inbox.LabelError as exc:
            request.session["flash"] = str(exc)
        return RedirectResponse("/nlu", status_code=303)

    def nlu_export(self, request: HttpRequest) -> Response:
        staff: Staff = request.state.staff
        t = StaffTranslator(staff.language)
        try:
            with self.db.session() as session:
                result = nlu_inbox.export(session, staff.name)
                export_id = result.export.id if result.export else None
        except nlu_inbox.LabelError as exc:
            request.session["flash"] = str(exc)
            return RedirectResponse("/nlu", status_code=303)
        if export_id is None:
            request.session["flash"] = t("Nothing to export.")
            return RedirectResponse("/nlu", status_code=303)
        return RedirectResponse(f"/nlu/exports/{export_id}", status_code=303)

    def nlu_export_page(self, request: HttpRequest) -> Response:
        with self.db.session() as session:
            record = session.get(NluExport, request.path_params["export_id"])
            if record is None:
                return self.refuse(request, 404, StaffTranslator(
                    request.state.staff.language)("Not found."))
            return self.render(request, "nlu_export.html", export=record,
                               diff_lines=record.diff.splitlines())

    # audit --------------------------------------------------------------------------------
    def audit_page(self, request: HttpRequest) -> Response:
        page = _page(request)
        if page is None:
            return self.refuse(request, 404, StaffTranslator(
                request.state.staff.language)("No such page."))
        with self.db.session() as session:
            entries = list(session.execute(
                select(AuditEntry).order_by(AuditEntry.id.desc())
                .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).scalars())
        return self.render(request, "audit.html", entries=entries[:PAGE_SIZE], page=page,
                           more=len(entries) > PAGE_SIZE)

    # the route table ----------------------------------------------------------------------
    def routes(self) -> list[ConsoleRoute]:
        return [
            ConsoleRoute("/login", self.login_page, ("GET", "POST"), None, "login"),
            # Open figures: public (role None), nothing personal (bot/console/open_figures.py)
            ConsoleRoute("/open", self.open_page, ("GET",), None, "open"),
            ConsoleRoute("/open.json", self.open_json, ("GET",), None, "open_json"),
            ConsoleRoute("/open.csv", self.open_csv, ("GET",), None, "open_csv"),
            ConsoleRoute("/open/fonts/{name}", self.open_font, ("GET",), None, "open_font"),
            ConsoleRoute("/logout", self.logout, ("POST",), "viewer", "logout"),
            ConsoleRoute("/", self.dashboard, ("GET",), "viewer", "dashboard"),
            ConsoleRoute("/requests", self.request_list, ("GET",), "viewer", "requests"),
            ConsoleRoute("/requests/{tracking_number}", self.request_page, ("GET",), "viewer",
                         "request"),
            ConsoleRoute("/requests/{tracking_number}/status", self.change_status, ("POST",),
                         "staff", "request_status"),
            ConsoleRoute("/requests/{tracking_number}/department", self.assign_department,
                         ("POST",), "staff", "request_department"),
            ConsoleRoute("/requests/{tracking_number}/duplicate", self.mark_duplicate,
                         ("POST",), "staff", "request_duplicate"),
            ConsoleRoute("/media/{kind}/{item_id:int}", self.media, ("GET",), "staff", "media"),
            ConsoleRoute("/conversations", self.conversations, ("GET",), "viewer",
                         "conversations"),
            ConsoleRoute("/conversations/{resident_id:int}", self.transcript, ("GET",),
                         "viewer", "transcript"),
            ConsoleRoute("/nlu", self.nlu_page, ("GET",), "viewer", "nlu"),
            ConsoleRoute("/nlu/{turn_id:int}/label", self.nlu_label, ("POST",), "staff",
                         "nlu_label"),
            ConsoleRoute("/nlu/{turn_id:int}/dismiss", self.nlu_label, ("POST",), "staff",
                         "nlu_dismiss"),
            ConsoleRoute("/nlu/export", self.nlu_export, ("POST",), "staff", "nlu_export"),
            ConsoleRoute("/nlu/exports/{export_id:int}", self.nlu_export_page, ("GET",),
                         "viewer", "nlu_export_page"),
            ConsoleRoute("/audit", self.audit_page, ("GET",), "admin", "audit"),
            ConsoleRoute("/staff", self.staff_accounts, ("GET",), "admin", "staff_accounts"),
            ConsoleRoute("/staff/{name}/disable", self.staff_account_action, ("POST",),
                         "admin", "staff_disable"),
            ConsoleRoute("/staff/{name}/enable", self.staff_account_action, ("POST",),
                         "admin", "staff_enable"),
            ConsoleRoute("/staff/{name}/password", self.staff_account_action, ("POST",),
                         "admin", "staff_password"),
            ConsoleRoute("/notices", self.notice_list, ("GET",), "viewer", "notices"),
            ConsoleRoute("/notices/new", self.notice_new, ("GET",), "staff", "notice_new"),
            ConsoleRoute("/notices", self.notice_create, ("POST",), "staff", "notice_create"),
            ConsoleRoute("/notices/{item_id:int}", self.notice_page, ("GET",), "viewer",
                         "notice"),
            ConsoleRoute("/notices/{item_id:int}/edit", self.notice_edit_page, ("GET",),
                         "staff", "notice_edit_page"),
            ConsoleRoute("/notices/{item_id:int}/edit", self.notice_create, ("POST",), "staff",
                         "notice_edit"),
            ConsoleRoute("/notices/{item_id:int}/publish", self.notice_publish, ("POST",),
                         "staff", "notice_publish"),
            ConsoleRoute("/notices/{item_id:int}/progress.json", self.notice_progress,
                         ("GET",), "viewer", "notice_progress"),
            ConsoleRoute("/polls", self.poll_list, ("GET",), "viewer", "polls"),
            ConsoleRoute("/polls/new", self.poll_new, ("GET",), "staff", "poll_new"),
            ConsoleRoute("/polls", self.poll_create, ("POST",), "staff", "poll_create"),
            ConsoleRoute("/polls/{item_id:int}", self.poll_page, ("GET",), "viewer", "poll"),
            ConsoleRoute("/polls/{item_id:int}/open", self.poll_action, ("POST",), "staff",
                         "poll_open"),
            ConsoleRoute("/polls/{item_id:int}/close", self.poll_action, ("POST",), "staff",
                         "poll_close"),
            ConsoleRoute("/polls/{item_id:int}/progress.json", self.poll_progress, ("GET",),
                         "viewer", "poll_progress"),
            ConsoleRoute("/handover", self.handover_queue, ("GET",), "viewer", "handover"),
            ConsoleRoute("/handover/{resident_id:int}", self.handover_page, ("GET",), "viewer",
                         "handover_conversation"),
            ConsoleRoute("/handover/{resident_id:int}/answer", self.handover_answer, ("POST",),
                         "staff", "handover_answer"),
            ConsoleRoute("/handover/{resident_id:int}/hand-back", self.handover_back,
                         ("POST",), "staff", "handover_back"),
            ConsoleRoute("/grid", self.grid_page, ("GET",), "staff", "grid"),
            ConsoleRoute("/grid/urgent.json", self.grid_urgent, ("GET",), "staff", "grid_urgent"),
            ConsoleRoute("/grid/link-code", self.grid_link_code, ("POST",), "staff",
                         "grid_link_code"),
            ConsoleRoute("/grid/unlink", self.grid_unlink, ("POST",), "staff", "grid_unlink"),
            ConsoleRoute("/requests/{tracking_number}/escalate", self.escalate_request,
                         ("POST",), "staff", "request_escalate"),
            ConsoleRoute("/clips", self.clips_page, ("GET",), "viewer", "clips"),
            ConsoleRoute("/translations", self.translations_page, ("GET",), "viewer",
                         "translations"),
            ConsoleRoute("/clips/{language}/{clip}/audio", self.clip_audio, ("GET",), "viewer",
                         "clip_audio"),
            ConsoleRoute("/clips/{language}/{clip}", self.clip_upload, ("POST",), "staff",
                         "clip_upload", files=1),
            ConsoleRoute("/clips/{language}/{clip}/delete", self.clip_delete, ("POST",),
                         "staff", "clip_delete"),
            ConsoleRoute("/volunteers", self.volunteer_list, ("GET",), "viewer", "volunteers"),
            ConsoleRoute("/requests/{tracking_number}/volunteers", self.volunteer_offer,
                         ("POST",), "staff", "request_volunteers"),
            ConsoleRoute("/alerts", self.alert_list, ("GET",), "viewer", "alerts"),
            ConsoleRoute("/alerts/new", self.alert_new, ("GET",), "staff", "alert_new"),
            ConsoleRoute("/alerts", self.alert_create, ("POST",), "staff", "alert_create"),
            ConsoleRoute("/alerts/{item_id:int}", self.alert_page, ("GET",), "viewer", "alert"),
            ConsoleRoute("/alerts/{item_id:int}/status.json", self.alert_status, ("GET",),
                         "viewer", "alert_status"),
            ConsoleRoute("/alerts/{item_id:int}/progress.json", self.alert_progress, ("GET",),
                         "viewer", "alert_progress"),
            ConsoleRoute("/residents/{resident_id:int}/flags", self.resident_flags,
                         ("POST",), "staff", "resident_flags"),
        ]

    # the guard ----------------------------------------------------------------------------
    def guard(self, route: ConsoleRoute):
        """Every page goes through here: login, role, CSRF on POST, then the page in a thread
        (the database calls are blocking)."""

        async def endpoint(request: HttpRequest) -> Response:
            staff = await run_in_threadpool(self.current_staff, request)
            request.state.staff = staff
            odd = _odd_input(request)
            if odd is not None and (route.role is None or staff is not None):
                t = StaffTranslator(staff.language if staff else _accept_language(request))
                return self.refuse(request, odd, t("Not found.") if odd == 404 else
                                   t("The address has a character that is not allowed."))
            if route.role is not None:
                if staff is None:
                    if request.method == "GET":
                        target = request.url.path + (f"?{request.url.query}"
                                                     if request.url.query else "")
                        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
                    return RedirectResponse("/login", status_code=303)
                if not staff.may(route.role):
                    t = StaffTranslator(staff.language)
                    return self.refuse(request, 403, t("You do not have permission to do this."))
            if request.method == "POST":
                form = await request.form(max_files=route.files, max_fields=50)
                request.state.form = form
                if not csrf_ok(request, form):
                    t = StaffTranslator(staff.language if staff else _accept_language(request))
                    return self.refuse(request, 403, t("The form has expired. Please try again."))
            return await run_in_threadpool(route.endpoint, request)

        return endpoint

    def current_staff(self, request: HttpRequest) -> Staff | None:
        uid = request.session.get("uid")
        if not isinstance(uid, int):
            return None
        at = request.session.get("at")
        if not isinstance(at, int) or utcnow().timestamp() - at > SESSION_HOURS * 3600:
            request.session.clear()
            return None
        with self.db.session() as session:
            user = session.get(StaffUser, uid)
            if user is None or not user.active or user.session_epoch != request.session.get(
                    "epoch"):
                request.session.clear()
                return None
            return Staff(user.id, user.name, user.role, user.language)


def csrf_token(request: HttpRequest) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: HttpRequest, form) -> bool:
    expected = request.session.get("csrf")
    given = form.get("csrf_token")
    return (isinstance(expected, str) and isinstance(given, str)
            and hmac.compare_digest(expected.encode(), given.encode()))


def _odd_input(request: HttpRequest) -> int | None:
    """404 for an id no row can have, 400 for a NUL character (PostgreSQL refuses it in text
    and the driver would raise); None when the address is fine."""
    for value in request.path_params.values():
        if isinstance(value, int) and not 0 < value <= MAX_ID:
            return 404
        if isinstance(value, str) and "\x00" in value:
            return 404
    if any("\x00" in key or "\x00" in value for key, value in request.query_params.multi_items()):
        return 400
    return None


def _safe_next(params) -> str:
    """Only a path on this site: never `//elsewhere` or a full address."""
    target = str(params.get("next", "") or "/")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _accept_language(request: HttpRequest) -> str:
    header = request.headers.get("accept-language", "").lower()
    return "zh_Hans" if header.startswith("zh") else "en"


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _day(value):
    """A YYYY-MM-DD date, None when not given; ValueError when it is not one we can use."""
    if not value:
        return None
    day = datetime.strptime(value, "%Y-%m-%d").date()
    if not 1900 <= day.year <= 9998:  # the ends of the calendar overflow once moved by a zone
        raise ValueError(value)
    return day


def _page(request: HttpRequest) -> int | None:
    """The ?page= asked for (1 when absent or not a number), None when it is past MAX_PAGE."""
    page = max(_int(request.query_params.get("page"), 1), 1)
    return page if page <= MAX_PAGE else None


def _media_path(data_dir: Path, relative: str | None) -> Path | None:
    """The file, if it is a regular file under <data dir>/media (no `..`, no link out)."""
    if not relative:
        return None
    root = (Path(data_dir) / "media").resolve()
    path = (Path(data_dir) / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def _guess_mime(path: Path) -> str:
    return {".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
            ".mp3": "audio/mpeg", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
            ".png": "image/png", ".webp": "image/webp"}.get(path.suffix.lower(),
                                                            "application/octet-stream")


def create_app(config: Config, db: Database) -> Starlette:
    """The console and the Open311 API as one ASGI app (serve it with serve_console)."""
    from bot.console.open311 import open311_app

    console = Console(config, db)
    table = console.routes()
    routes = [Route(r.path, console.guard(r), methods=list(r.methods), name=r.name)
              for r in table]
    routes += [
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        Mount("/open311/v2", app=open311_app(config, db), name="open311"),
    ]
    app = Starlette(routes=routes, middleware=[
        Middleware(TrustedProxies, proxies=config.console.trusted_proxies),
        Middleware(BodyLimit, limit=config.console.max_form_bytes),
        Middleware(SecurityHeaders, csp=(
            "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
            cached_prefix="/static/"),
        Middleware(SecureCookies, always=config.console.secure_cookie),
        Middleware(SessionMiddleware, secret_key=auth.secret_key(config.data_dir),
                   session_cookie=SESSION_COOKIE, max_age=SESSION_HOURS * 3600,
                   same_site="lax", https_only=config.console.secure_cookie),
    ])
    app.state.console_routes = table
    app.state.console = console
    return app
