"""Console pages for area alerts (应急预警): compose and send, watch the answers and the check
list per grid, and staff's flags on a resident (lives alone, elderly). Mixed into Console."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, RedirectResponse, Response

from bot.config import ConfigError, _Checker
from bot.console import auth
from bot.console.community import Draft, push_progress
from bot.console.i18n import StaffTranslator
from bot.console.masking import mask_phone
from bot.models import Alert, Resident
from bot.services import alerts as service
from bot.specs import ALERT_PARTS, DEFAULT_CHECK_MINUTES, MAX_TITLE, SEVERITIES, check_alert
from flows.alerts import renderer

log = logging.getLogger(__name__)


class _FormChecker(_Checker):
    """Reports a form's mistakes with the same words as a file's, naming the field."""

    def __init__(self):
        super().__init__(Path("form"))


class AlertPages:
    """Area alerts; expects Console's render, refuse, db, config, catalogs and actions."""

    def _grid_name(self, request: HttpRequest):
        return self._grid_name_for(request.state.staff)

    def alert_list(self, request: HttpRequest) -> Response:
        with self.db.session() as session:
            rows = []
            for alert in service.staff_list(session):
                totals = {"safe": 0, "help": 0, "no_answer": 0}
                for numbers in service.counts(session, alert.id).values():
                    for key, value in numbers.items():
                        totals[key] += value
                rows.append((alert, totals, len(service.check_list(session, alert))))
            return self.render(request, "alerts.html", rows=rows,
                               default_language=self.config.default_language,
                               grid_name=self._grid_name(request))

    def alert_new(self, request: HttpRequest, draft: Draft | None = None,
                  error: str | None = None) -> Response:
        draft = draft or Draft({"severity": "warning",
                                "check_after_minutes": str(DEFAULT_CHECK_MINUTES),
                                "target": "everyone"})
        return self.render(request, "alert_form.html", draft=draft, error=error,
                           languages=self.config.languages, parts=ALERT_PARTS,
                           severities=SEVERITIES, grids=self.config.grids,
                           grid_name=self._grid_name(request), max_title=MAX_TITLE,
                           default_language=self.config.default_language,
                           status_code=400 if error else 200)

    def _alert_raw(self, draft: Draft) -> dict:
        """The form as an alert file's keys, to be checked by the same rules."""
        texts = {}
        for language in self.config.language_ids:
            entry = {part: draft.get(f"{part}_{language}").strip() for part in ALERT_PARTS}
            if any(entry.values()):
                texts[language] = entry
        raw: dict = {"texts": texts, "severity": draft.get("severity")}
        minutes = draft.get("check_after_minutes").strip()
        raw["check_after_minutes"] = int(minutes) if minutes.isdigit() else minutes
        if draft.get("target") == "area":
            target = {}
            grids = [g.id for g in self.config.grids if draft.get(f"grid_{g.id}")]
            if grids:
                target["grids"] = grids
            buildings = [b for b in draft.get("buildings").replace("，", ",").split(",")
                         if b.strip()]
            if buildings:
                target["buildings"] = buildings
            raw["target"] = target
        return raw

    def alert_create(self, request: HttpRequest) -> Response:
        """Checks the form as `linli alerts send` checks a file, then queues the alert for
        every resident of its area (the running `linli serve` sends it before anything else)."""
        staff = request.state.staff
        t = StaffTranslator(staff.language)
        draft = Draft({k: str(v) for k, v in request.state.form.items() if k != "csrf_token"})
        try:
            spec = check_alert(_FormChecker(), self._alert_raw(draft), self.config,
                               f"console:{staff.name}")
        except ConfigError as exc:
            return self.alert_new(request, draft, str(exc).removeprefix("form: "))
        with self.db.session() as session:
            alert_id = service.add(session, spec, created_by=f"staff:{staff.name}").id
            auth.audit(session, staff.name, "alert.create", f"alert:{alert_id}",
                       {"severity": spec.severity, "grids": spec.grids,
                        "buildings": spec.buildings})
        area, queued = service.send(self.db, self.config, alert_id,
                                    renderer(self.config, self.catalogs,
                                             self.actions.channels))
        with self.db.session() as session:
            auth.audit(session, staff.name, "alert.send", f"alert:{alert_id}",
                       {"residents": area, "queued": queued})
        request.session["flash"] = t("Alert sent: {queued} of {area} resident(s) queued now.",
                                     queued=queued, area=area)
        return RedirectResponse(f"/alerts/{alert_id}", status_code=303)

    def _status(self, session, alert: Alert, staff) -> dict:
        """Per grid counts, the check list (names and phones as this staff member may see
        them) and the delivery progress."""
        grid_name = self._grid_name_for(staff)
        counts = service.counts(session, alert.id)
        grids = [{"grid": grid_id or "", "name": grid_name(grid_id), **numbers}
                 for grid_id, numbers in sorted(counts.items(), key=lambda i: i[0] or "~")]
        entries = service.check_list(session, alert)
        residents = {r.id: r for r in session.execute(
            select(Resident).where(Resident.id.in_([e.resident_id for e in entries]))
        ).scalars()} if entries else {}
        checks = []
        for entry in entries:
            resident = residents.get(entry.resident_id)
            named = not staff.viewer and resident is not None
            checks.append({
                "resident": entry.resident_id,
                "grid": grid_name(entry.grid_id),
                "building": entry.building or "",
                "name": (resident.display_name or "") if named else "",
                "phone": (resident.phone or "") if named else
                mask_phone(resident.phone if resident else None),
                "reason": entry.reason,
                "since": self.when(entry.since),
            })
        return {"grids": grids, "checks": checks,
                "progress": push_progress(session, service.delivery_prefix(alert.id))}

    def _grid_name_for(self, staff):
        language = staff.language
        names = {g.id: g.names.get(language) or g.names[self.config.default_language]
                 for g in self.config.grids}
        none = StaffTranslator(language)("In no grid")
        return lambda grid_id: names.get(grid_id, grid_id) if grid_id else none

    def alert_page(self, request: HttpRequest) -> Response:
        t = StaffTranslator(request.state.staff.language)
        with self.db.session() as session:
            alert = session.get(Alert, request.path_params["item_id"])
            if alert is None:
                return self.refuse(request, 404, t("Not found."))
            status = self._status(session, alert, request.state.staff)
            return self.render(request, "alert.html", alert=alert, status=status,
                               deadline=service.deadline(alert),
                               default_language=self.config.default_language,
                               grid_name=self._grid_name(request),
                               statuses=("sent", "pending", "failed", "unconfirmed"),
                               progress=status["progress"],
                               progress_url=f"/alerts/{alert.id}/progress.json")

    def alert_progress(self, request: HttpRequest) -> Response:
        """Delivery per channel and status, for the progress table (static/progress.js)."""
        with self.db.session() as session:
            return JSONResponse(push_progress(
                session, service.delivery_prefix(request.path_params["item_id"])))

    def alert_status(self, request: HttpRequest) -> Response:
        with self.db.session() as session:
            alert = session.get(Alert, request.path_params["item_id"])
            if alert is None:
                return JSONResponse({"error": "not found"}, status_code=404)
            return JSONResponse(self._status(session, alert, request.state.staff),
                                headers={"Cache-Control": "no-store"})

    def resident_flags(self, request: HttpRequest) -> Response:
        """Staff mark a resident as living alone and/or elderly (audited): their silence after
        an area alert puts them on their grid's check list."""
        staff = request.state.staff
        t = StaffTranslator(staff.language)
        resident_id = request.path_params["resident_id"]
        form = request.state.form
        lives_alone, elderly = form.get("lives_alone") == "1", form.get("elderly") == "1"
        with self.db.session() as session:
            try:
                service.set_flags(session, resident_id, lives_alone=lives_alone,
                                  elderly=elderly)
            except service.AlertError:
                return self.refuse(request, 404, t("Not found."))
            auth.audit(session, staff.name, "resident.flags", f"resident:{resident_id}",
                       {"lives_alone": lives_alone, "elderly": elderly})
        request.session["flash"] = t("Saved.")
        return RedirectResponse(f"/conversations/{resident_id}", status_code=303)
