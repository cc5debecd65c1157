"""Console pages for grid workers (网格员): "my grid", urgent requests live, linking a chat to
the bot, and 吹哨报到 escalation from a request's page (mixed into Console)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, RedirectResponse, Response

from bot.config import Grid
from bot.console import auth
from bot.console.i18n import StaffTranslator
from bot.console.models import StaffUser
from bot.models import Escalation, utcnow
from bot.places import listed_building
from bot.services import grids as grid_service
from bot.services import requests as request_service
from flows import handover

URGENT_POLL_SECONDS = 5
MAX_REQUEST_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL


@dataclass(frozen=True)
class EscalationBox:
    """What the request page shows of 吹哨报到: whether this staff member may escalate, and
    the request's escalations so far (with the staff notes, which residents never see)."""

    allowed: bool
    escalations: list[Escalation]


class GridPages:
    """The grid worker's pages; expects Console's render, refuse, db, config and catalogs."""

    def _grid_choice(self, request: HttpRequest) -> tuple[tuple[Grid, ...], Grid | None]:
        staff = request.state.staff
        grids = grid_service.grids_for(self.config, staff.name, staff.role)
        wanted = request.query_params.get("grid") or ""
        chosen = next((g for g in grids if g.id == wanted), grids[0] if grids else None)
        return grids, chosen

    def _resident_grid(self, resident) -> str | None:
        found = listed_building(self.config, resident.building or resident.address)
        return found[0].id if found else None

    def grid_page(self, request: HttpRequest, link_code: str | None = None) -> Response:
        staff = request.state.staff
        grids, chosen = self._grid_choice(request)
        now = utcnow()
        with self.db.session() as session:
            user = session.get(StaffUser, staff.id)
            link = grid_service.linked_chat(session, user)
            worker = bool(self.config.grids_of_worker(staff.name))
            if chosen is None:
                return self.render(request, "grid.html", grids=grids, chosen=None, link=link,
                                   link_code=link_code, worker=worker)
            lists = grid_service.grid_requests(session, chosen.id, now)
            waiting = [w for w in handover.queue(session)
                       if self._resident_grid(w.resident) == chosen.id]
            urgent = grid_service.urgent_new(session, self.config, [chosen.id])
            shown = [*lists.new, *lists.overdue]
            return self.render(
                request, "grid.html", grids=grids, chosen=chosen, new=lists.new,
                overdue=lists.overdue, waiting=waiting, now=now, link=link, link_code=link_code,
                worker=worker,
                urgent_ids={r.id for r in urgent},
                urgent_categories=grid_service.urgent_categories(self.config),
                newest_urgent=max((r.id for r in urgent), default=0),
                urgent_url=f"/grid/urgent.json?grid={quote(chosen.id)}",
                poll_seconds=URGENT_POLL_SECONDS, minutes=_minutes,
                grid_name=lambda g: g.names.get(staff.language)
                or g.names[self.config.default_language],
                places=[r.location_text for r in shown]
                + self.places(session, [r.resident_id for r in shown]
                              + [w.resident.id for w in waiting]))

    def grid_urgent(self, request: HttpRequest) -> Response:
        """New urgent requests of the chosen grid after the id the page last saw (JSON)."""
        _, chosen = self._grid_choice(request)
        try:
            after = min(max(int(request.query_params.get("after", "0")), 0), MAX_REQUEST_ID)
        except ValueError:
            after = 0
        if chosen is None:
            return JSONResponse({"grid": None, "urgent": []})
        names = self.names(request.state.staff)
        with self.db.session() as session:
            rows = grid_service.urgent_new(session, self.config, [chosen.id], after)
            found = [{"id": r.id, "tracking_number": r.tracking_number,
                      "category": names["category_name"](r.category_id),
                      "filed": self.when(r.created_at)} for r in rows]
        response = JSONResponse({"grid": chosen.id, "urgent": found})
        response.headers["Cache-Control"] = "no-store"
        return response

    def grid_link_code(self, request: HttpRequest) -> Response:
        """A fresh one-time code, shown once in this page's answer (never stored in clear,
        never put in the session cookie)."""
        staff = request.state.staff
        with self.db.session() as session:
            user = session.get(StaffUser, staff.id)
            code = grid_service.new_link_code(session, self.config.data_dir, user)
            auth.audit(session, staff.name, "staff.link_code", f"staff:{staff.name}")
        return self.grid_page(request, link_code=f"{code[:4]} {code[4:]}")

    def grid_unlink(self, request: HttpRequest) -> Response:
        staff = request.state.staff
        t = StaffTranslator(staff.language)
        with self.db.session() as session:
            user = session.get(StaffUser, staff.id)
            if grid_service.unlink(session, user):
                auth.audit(session, staff.name, "staff.unlink", f"staff:{staff.name}")
                request.session["flash"] = t("The chat is no longer linked.")
        return RedirectResponse("/grid", status_code=303)

    # 吹哨报到 --------------------------------------------------------------------------------
    def escalation_box(self, staff, row) -> EscalationBox:
        """For the request page (a template global): may `staff` escalate `row`, and how it
        was escalated before."""
        with self.db.session() as session:
            found = list(session.execute(select(Escalation).where(
                Escalation.request_id == row.id).order_by(Escalation.id)).scalars())
            session.expunge_all()
        return EscalationBox(grid_service.may_escalate(self.config, staff.name, staff.role, row),
                             found)

    def escalate_request(self, request: HttpRequest) -> Response:
        staff = request.state.staff
        form = request.state.form
        tracking_number = request.path_params["tracking_number"]
        t = StaffTranslator(staff.language)
        with self.db.session() as session:
            row = request_service.find(session, tracking_number)
            if row is None:
                return self.refuse(request, 404, t("Not found."))
            if not grid_service.may_escalate(self.config, staff.name, staff.role, row):
                return self.refuse(request, 403, t("You do not have permission to do this."))
            department = str(form.get("department", ""))
            try:
                escalation = grid_service.escalate(
                    session, self.catalogs, row.tracking_number, department,
                    str(form.get("note", "")), actor=f"staff:{staff.name}")
                auth.audit(session, staff.name, "request.escalate", row.tracking_number,
                           {"from": escalation.from_department_id, "to": department,
                            "due": self.when(escalation.due_at)})
                request.session["flash"] = t("Escalated. The department's time limit starts now.")
            except request_service.RequestError as exc:
                request.session["flash"] = str(exc)
            tracking_number = row.tracking_number
        return RedirectResponse(f"/requests/{quote(tracking_number)}", status_code=303)


def _minutes(since, now) -> int | None:
    if since is None:
        return None
    return max(0, int((now - since).total_seconds() // 60))
