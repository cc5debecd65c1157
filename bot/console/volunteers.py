"""Console pages for volunteers (mixed into Console): each grid's list, and offering an
elderly_help request to its grid's volunteers from the request's page."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from starlette.requests import Request as HttpRequest
from starlette.responses import RedirectResponse, Response

from bot.console import auth
from bot.console.i18n import StaffTranslator
from bot.console.masking import mask_phone
from bot.models import Request, Resident, Volunteer
from bot.services import requests as request_service
from bot.services import volunteers as service
from flows.volunteers import offer_payloads, offered_note

# What each offer status is called on the console.
OFFER_STATUSES = {
    "offered": "waiting for an answer",
    "accepted": "accepted",
    "declined": "declined",
    "taken": "accepted too late",
    "withdrawn": "withdrew",
}


@dataclass(frozen=True)
class VolunteerLine:
    """A volunteer as a staff member may see them: a viewer gets the number only."""

    number: int
    resident_id: int | None
    name: str
    phone: str
    channel: str
    skills: list[str]
    times: list[str]


def volunteer_line(volunteer: Volunteer | None, resident: Resident | None,
                   masked: bool) -> VolunteerLine | None:
    if volunteer is None:
        return None
    name = "" if masked or resident is None else (resident.display_name or "")
    phone = "" if resident is None or not resident.phone else (
        mask_phone(resident.phone) if masked else resident.phone)
    return VolunteerLine(volunteer.id, resident.id if resident else None, name, phone,
                         resident.channel if resident else "", list(volunteer.skills or []),
                         list(volunteer.times or []))


class VolunteerPages:
    """The volunteers list and the offer section of a request's page; expects Console's
    render, refuse, db, config and catalogs."""

    def _skill_names(self, staff) -> dict[str, str]:
        t = self.catalogs.translator(staff.language if staff.language in self.config.language_ids
                                     else self.config.default_language)
        return {skill: t(label) for skill, label in (*service.SKILLS, *service.TIMES)}

    def _grid_names(self, staff) -> dict[str, str]:
        language = staff.language
        return {g.id: g.names.get(language) or g.names[self.config.default_language]
                for g in self.config.grids}

    def volunteer_section(self, request: HttpRequest, row: Request) -> dict:
        """What the request page shows of volunteers (its template calls this)."""
        staff = request.state.staff
        masked = staff.viewer
        with self.db.session() as session:
            offers = [(o.offer, volunteer_line(o.volunteer, o.resident, masked))
                      for o in service.offers_of_request(session, row.id)]
            count = len(service.of_grid(session, row.grid_id)) if row.grid_id else 0
        return {
            "offers": offers,
            "count": count,
            "grid": self._grid_names(staff).get(row.grid_id or "", row.grid_id or ""),
            "may_offer": service.offerable(row) and staff.may("staff") and service.may_offer(
                self.config, staff.name, staff.may("admin"), row),
            "skills": [(skill, self._skill_names(staff)[skill]) for skill in service.SKILL_IDS],
            "names": self._skill_names(staff),
            "statuses": OFFER_STATUSES,
        }

    def volunteer_offer(self, request: HttpRequest) -> Response:
        staff = request.state.staff
        t = StaffTranslator(staff.language)
        tracking_number = request.path_params["tracking_number"]
        skill = str(request.state.form.get("skill", "")) or None
        with self.db.session() as session:
            row = request_service.find(session, tracking_number)
            if row is None:
                return self.refuse(request, 404, t("Not found."))
            if not service.may_offer(self.config, staff.name, staff.may("admin"), row):
                return self.refuse(request, 403, t("Only the grid worker of this request's grid "
                                                   "or an admin can offer it to volunteers."))

            def render(resident, offered_request, offer):
                return offer_payloads(self.catalogs.translator(resident.language), self.config,
                                      resident, offered_request, offer,
                                      self.actions.channels.get(resident.channel, frozenset()))

            try:
                made = service.offer(session, row, staff.name, render, skill=skill)
            except service.VolunteerError as exc:
                request.session["flash"] = str(exc)
                return RedirectResponse(f"/requests/{quote(row.tracking_number)}",
                                        status_code=303)
            if made:
                service.record(session, row, f"staff:{staff.name}",
                               offered_note(self.catalogs.translator(row.language), len(made)))
            auth.audit(session, staff.name, "request.volunteers", row.tracking_number,
                       {"offered": len(made), "skill": skill})
            request.session["flash"] = (t("Offered to {count} volunteer(s).", count=len(made))
                                        if made else
                                        t("No volunteer of this grid is left to offer it to."))
            return RedirectResponse(f"/requests/{quote(row.tracking_number)}", status_code=303)

    def volunteer_list(self, request: HttpRequest) -> Response:
        staff = request.state.staff
        grids = self._grid_names(staff)
        chosen = request.query_params.get("grid", "")
        shown = [chosen] if chosen in grids else list(grids)
        with self.db.session() as session:
            by_grid = []
            for grid_id in shown:
                lines = []
                for volunteer in service.of_grid(session, grid_id):
                    resident = session.get(Resident, volunteer.resident_id)
                    lines.append(volunteer_line(volunteer, resident, staff.viewer))
                by_grid.append((grid_id, grids[grid_id], lines))
        return self.render(request, "volunteers.html", by_grid=by_grid, grids=grids,
                           chosen=chosen if chosen in grids else "",
                           names=self._skill_names(staff))
