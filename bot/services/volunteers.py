"""Volunteers: sign-up, withdrawal, and `elderly_help` requests offered to a grid's volunteers.

A request is offered by its grid's worker (or an admin) to the active volunteers of the
request's grid, each once (a unique key, and the outbox's delivery key); the first volunteer to
accept gets the job (the request's row is locked while answering, and the database holds at
most one accepted offer a request); a later acceptance is answered "taken". What a volunteer is
told is rendered by the caller (flows/volunteers.py): the request's category and building,
never the requester's name, phone or words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Config
from bot.i18n import N_
from bot.models import Request, RequestEvent, Resident, Volunteer, VolunteerOffer, utcnow
from bot.services import outbox
from bot.services.requests import OPEN_STATUSES

# (id, label): what a volunteer can do, and when.
SKILLS = (
    ("shopping", N_("Shopping")),
    ("hospital", N_("Going to hospital with someone")),
    ("visits", N_("Home visits and a chat")),
    ("repairs", N_("Small repairs")),
    ("interpreting", N_("Translating and interpreting")),
    ("technology", N_("Help with phones and computers")),
)
TIMES = (
    ("weekday_day", N_("Weekdays, daytime")),
    ("weekday_evening", N_("Weekday evenings")),
    ("weekends", N_("Weekends")),
)
SKILL_IDS = tuple(skill for skill, _ in SKILLS)
TIME_IDS = tuple(time for time, _ in TIMES)
# The category whose requests can be offered to volunteers.
OFFERED_CATEGORY = "elderly_help"
OFFER_KEY = "volunteer-offer:"  # outbox delivery key prefix: one message per offer


class VolunteerError(Exception):
    """A sign-up or an offer the rules do not allow; the message says what is wrong."""


@dataclass(frozen=True)
class OfferRow:
    """One offer as the console lists it: the offer, and the volunteer and resident if kept."""

    offer: VolunteerOffer
    volunteer: Volunteer | None
    resident: Resident | None


def find(session: Session, resident: Resident) -> Volunteer | None:
    """The resident's sign-up, withdrawn or not."""
    return session.execute(
        select(Volunteer).where(Volunteer.resident_id == resident.id)).scalar_one_or_none()


def active(session: Session, resident: Resident) -> Volunteer | None:
    volunteer = find(session, resident)
    return volunteer if volunteer is not None and volunteer.withdrawn_at is None else None


def sign_up(session: Session, config: Config, resident: Resident, grid_id: str,
            skills: list[str], times: list[str]) -> Volunteer:
    """Signs the resident up, or changes their sign-up (a withdrawn one signs up again)."""
    try:
        config.grid(grid_id)
    except KeyError:
        raise VolunteerError(f"unknown grid {grid_id!r}") from None
    skills = [s for s in SKILL_IDS if s in set(skills)]
    times = [t for t in TIME_IDS if t in set(times)]
    if not skills or not times:
        raise VolunteerError("a volunteer needs at least one skill and one time")
    now = utcnow()
    volunteer = find(session, resident)
    if volunteer is None:
        volunteer = Volunteer(resident_id=resident.id, created_at=now)
        session.add(volunteer)
    volunteer.grid_id, volunteer.skills, volunteer.times = grid_id, skills, times
    volunteer.updated_at, volunteer.withdrawn_at = now, None
    session.flush()
    return volunteer


def withdraw(session: Session, resident: Resident) -> bool:
    """No more offers; offers not yet answered are withdrawn too. False if not signed up."""
    volunteer = active(session, resident)
    if volunteer is None:
        return False
    now = utcnow()
    volunteer.withdrawn_at = volunteer.updated_at = now
    for offer in session.execute(select(VolunteerOffer).where(
            VolunteerOffer.volunteer_id == volunteer.id,
            VolunteerOffer.status == "offered")).scalars():
        offer.status, offer.answered_at = "withdrawn", now
    session.flush()
    return True


def of_grid(session: Session, grid_id: str, skill: str | None = None) -> list[Volunteer]:
    """The grid's active volunteers (with `skill`, if given), the longest signed up first."""
    rows = session.execute(
        select(Volunteer).where(Volunteer.grid_id == grid_id, Volunteer.withdrawn_at.is_(None))
        .order_by(Volunteer.created_at, Volunteer.id)).scalars()
    return [v for v in rows if skill is None or skill in (v.skills or [])]


def may_offer(config: Config, staff_name: str, admin: bool, request: Request) -> bool:
    """The request's grid worker, or an admin."""
    if admin:
        return True
    return request.grid_id is not None and any(
        g.id == request.grid_id for g in config.grids_of_worker(staff_name))


def offerable(request: Request) -> bool:
    return (request.category_id == OFFERED_CATEGORY and request.status in OPEN_STATUSES
            and request.grid_id is not None)


def offer(session: Session, request: Request, staff_name: str,
          render: Callable[[Resident, Request, VolunteerOffer], list[dict]],
          skill: str | None = None) -> list[VolunteerOffer]:
    """Offers the request to each active volunteer of its grid (with `skill`) not offered it
    before, and queues their message (`render`: the payloads for one volunteer). Returns the
    new offers; an empty list when everyone was offered it already."""
    if not offerable(request):
        raise VolunteerError(f"{request.tracking_number} cannot be offered to volunteers: only "
                             f"open {OFFERED_CATEGORY} requests in a grid can")
    if skill is not None and skill not in SKILL_IDS:
        raise VolunteerError(f"unknown skill {skill!r}")
    already = set(session.execute(select(VolunteerOffer.volunteer_id).where(
        VolunteerOffer.request_id == request.id)).scalars())
    made = []
    now = utcnow()
    for volunteer in of_grid(session, request.grid_id, skill):
        if volunteer.id in already or volunteer.resident_id == request.resident_id:
            continue
        resident = session.get(Resident, volunteer.resident_id)
        row = VolunteerOffer(request_id=request.id, volunteer_id=volunteer.id,
                             status="offered", offered_by=staff_name, offered_at=now)
        session.add(row)
        session.flush()
        outbox.enqueue(session, resident, render(resident, request, row),
                       kind="push", key=f"{OFFER_KEY}{row.id}")
        made.append(row)
    return made


def record(session: Session, request: Request, actor: str, note: str) -> RequestEvent:
    """A line in the request's history that changes nothing else (its status stays)."""
    event = RequestEvent(at=utcnow(), status=request.status, previous_status=request.status,
                         note=note, actor=actor, notify=False)
    request.events.append(event)
    session.flush()
    return event


def offer_of(session: Session, resident: Resident, offer_id: int) -> VolunteerOffer | None:
    """The resident's own offer by its id (never another volunteer's)."""
    volunteer = find(session, resident)
    if volunteer is None:
        return None
    row = session.get(VolunteerOffer, offer_id)
    return row if row is not None and row.volunteer_id == volunteer.id else None


def open_offers(session: Session, resident: Resident) -> list[VolunteerOffer]:
    """Offers the resident has not answered, of requests still open and not yet taken."""
    volunteer = active(session, resident)
    if volunteer is None:
        return []
    rows = session.execute(
        select(VolunteerOffer).join(Request, Request.id == VolunteerOffer.request_id)
        .where(VolunteerOffer.volunteer_id == volunteer.id, VolunteerOffer.status == "offered",
               Request.status.in_(sorted(OPEN_STATUSES)))
        .order_by(VolunteerOffer.id)).scalars()
    return [row for row in rows if taken_by(session, row.request_id) is None]


def taken_by(session: Session, request_id: int) -> VolunteerOffer | None:
    return session.execute(select(VolunteerOffer).where(
        VolunteerOffer.request_id == request_id,
        VolunteerOffer.status == "accepted")).scalar_one_or_none()


def answer(session: Session, resident: Resident, offer_id: int, accept: bool) -> str:
    """The volunteer's answer: "accepted", "declined", "taken" (someone accepted first),
    "closed" (the request needs no help any more), "answered" (answered before) or
    "unknown" (not their offer, or they withdrew)."""
    row = offer_of(session, resident, offer_id)
    if row is None or row.status == "withdrawn":
        return "unknown"
    if row.status != "offered":
        return "answered"
    # One answer at a time a request: the second of two volunteers accepting at once waits
    # here, then sees the first one's acceptance (PostgreSQL; SQLite has one writer anyway).
    session.execute(select(Request.id).where(Request.id == row.request_id).with_for_update())
    request = session.get(Request, row.request_id, populate_existing=True)
    now = utcnow()
    if not offerable(request):
        return "closed"
    if not accept:
        row.status, row.answered_at = "declined", now
        session.flush()
        return "declined"
    if taken_by(session, request.id) is not None:
        row.status, row.answered_at = "taken", now
        session.flush()
        return "taken"
    row.status, row.answered_at = "accepted", now
    session.flush()
    return "accepted"


def offers_of_request(session: Session, request_id: int) -> list[OfferRow]:
    rows = []
    for row in session.execute(select(VolunteerOffer).where(
            VolunteerOffer.request_id == request_id).order_by(VolunteerOffer.id)).scalars():
        volunteer = session.get(Volunteer, row.volunteer_id) if row.volunteer_id else None
        resident = session.get(Resident, volunteer.resident_id) if volunteer else None
        rows.append(OfferRow(row, volunteer, resident))
    return rows
