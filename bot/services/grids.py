"""Grid workers (网格员): their grid's requests, urgent pushes to a linked chat, escalation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.config import Config, Grid
from bot.console.models import StaffLink, StaffLinkCode, StaffUser
from bot.i18n import Catalogs
from bot.keys import secret_key
from bot.messages import Reply, reply_to_stored
from bot.models import Department, Escalation, Request, RequestEvent, Resident, utcnow
from bot.services import outbox
from bot.services.requests import OPEN_STATUSES, RequestError, find

LINK_CODE_MINUTES = 10
LINK_CODE_DIGITS = 8
MAX_NOTE = 1000
URGENT_KIND = "grid-urgent"  # outbox rows telling a grid worker of an urgent request
MAX_PUSHED_DESCRIPTION = 200


# --- the grid's requests ----------------------------------------------------------------------

def urgent_categories(config: Config) -> frozenset[str]:
    return frozenset(c.id for c in config.categories if c.urgent)


def grids_for(config: Config, staff_name: str, role: str) -> tuple[Grid, ...]:
    """The grids a staff member looks after: every grid for an admin, else their own."""
    return config.grids if role == "admin" else config.grids_of_worker(staff_name)


def may_escalate(config: Config, staff_name: str, role: str, request: Request) -> bool:
    """An admin, or a grid worker of the request's grid (吹哨: the grid calls, departments come)."""
    if role == "admin":
        return True
    return role == "staff" and request.grid_id in {
        g.id for g in config.grids_of_worker(staff_name)}


@dataclass
class GridRequests:
    new: list[Request]  # submitted, nobody has acted yet
    overdue: list[Request]  # open and past the time limit


def grid_requests(session: Session, grid_id: str, now: datetime | None = None,
                  limit: int = 200) -> GridRequests:
    now = now or utcnow()
    newest_first = (Request.created_at.desc(), Request.id.desc())
    new = session.execute(
        select(Request).where(Request.grid_id == grid_id, Request.status == "submitted")
        .order_by(*newest_first).limit(limit)).scalars()
    overdue = session.execute(
        select(Request).where(Request.grid_id == grid_id,
                              Request.status.in_(sorted(OPEN_STATUSES)), Request.due_at < now)
        .order_by(Request.due_at).limit(limit)).scalars()
    return GridRequests(list(new), list(overdue))


def urgent_new(session: Session, config: Config, grid_ids: list[str],
               after_id: int = 0) -> list[Request]:
    """Urgent requests still waiting (submitted) in these grids, newer than `after_id`."""
    urgent = sorted(urgent_categories(config))
    if not urgent or not grid_ids:
        return []
    return list(session.execute(
        select(Request).where(Request.grid_id.in_(grid_ids), Request.category_id.in_(urgent),
                              Request.status == "submitted", Request.id > after_id)
        .order_by(Request.id.desc()).limit(50)).scalars())


# --- linking a staff account to a chat --------------------------------------------------------

def _code_hash(data_dir: Path, code: str) -> str:
    key = hashlib.sha256(f"linli staff link code {secret_key(data_dir)}".encode()).digest()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def normalise_code(text: str) -> str:
    """The digits of a typed code, of any script ("1234 5678", "１２３４-５６７８")."""
    folded = unicodedata.normalize("NFKC", text or "")
    return "".join(str(unicodedata.digit(ch)) for ch in folded if ch.isdigit())


def new_link_code(session: Session, data_dir: Path, staff: StaffUser,
                  now: datetime | None = None) -> str:
    """A fresh one-time code for this account (earlier unused ones stop working)."""
    now = now or utcnow()
    session.execute(
        update(StaffLinkCode)
        .where(StaffLinkCode.staff_user_id == staff.id, StaffLinkCode.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False))
    code = "".join(secrets.choice("0123456789") for _ in range(LINK_CODE_DIGITS))
    session.add(StaffLinkCode(staff_user_id=staff.id, code_hash=_code_hash(data_dir, code),
                              created_at=now,
                              expires_at=now + timedelta(minutes=LINK_CODE_MINUTES)))
    session.flush()
    return code


def link(session: Session, data_dir: Path, code: str, resident: Resident,
         now: datetime | None = None) -> StaffUser | None:
    """Links the account whose valid code this is to the resident's chat; None if the code is
    wrong, used or expired. The code is spent by a conditional update: used once, even when
    two chats send it at the same moment."""
    now = now or utcnow()
    digits = normalise_code(code)
    if len(digits) != LINK_CODE_DIGITS:
        return None
    row = session.execute(select(StaffLinkCode).where(
        StaffLinkCode.code_hash == _code_hash(data_dir, digits))).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at < now:
        return None
    spent = session.execute(
        update(StaffLinkCode).where(StaffLinkCode.id == row.id, StaffLinkCode.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False))
    staff = session.get(StaffUser, row.staff_user_id)
    if spent.rowcount != 1 or staff is None or not staff.active:
        return None
    existing = session.execute(select(StaffLink).where(
        StaffLink.staff_user_id == staff.id)).scalar_one_or_none()
    if existing is None:
        session.add(StaffLink(staff_user_id=staff.id, resident_id=resident.id, linked_at=now))
    else:
        existing.resident_id, existing.linked_at = resident.id, now
    session.flush()
    return staff


def linked_chat(session: Session, staff: StaffUser) -> StaffLink | None:
    return session.execute(select(StaffLink).where(
        StaffLink.staff_user_id == staff.id)).scalar_one_or_none()


def unlink(session: Session, staff: StaffUser) -> bool:
    link_row = linked_chat(session, staff)
    if link_row is None:
        return False
    session.delete(link_row)
    session.flush()
    return True


# --- urgent requests pushed to linked grid workers --------------------------------------------

def announce_urgent(session: Session, config: Config, catalogs: Catalogs,
                    request: Request) -> int:
    """Queues, in the filing transaction, a message to the linked chat of each grid worker of
    the request's grid if its category is urgent. Keyed per request and worker: never twice.
    Returns how many were queued."""
    if request.grid_id is None or request.category_id not in urgent_categories(config):
        return 0
    try:
        grid = config.grid(request.grid_id)
    except KeyError:
        return 0
    queued = 0
    rows = session.execute(
        select(StaffUser, StaffLink, Resident)
        .join(StaffLink, StaffLink.staff_user_id == StaffUser.id)
        .join(Resident, Resident.id == StaffLink.resident_id)
        .where(StaffUser.name.in_(sorted(grid.workers)), StaffUser.active.is_(True))
        .order_by(StaffUser.id)).all()
    for staff, _link, chat in rows:
        t = catalogs.translator(chat.language)
        lines = [t("Urgent request {tracking_number} in {grid}: {category}",
                   tracking_number=request.tracking_number, grid=t.name(grid.names),
                   category=t.name(config.category(request.category_id).names))]
        if request.location_text:
            lines.append(t("Place: {place}", place=request.location_text))
        if request.description:
            lines.append(request.description[:MAX_PUSHED_DESCRIPTION])
        lines.append(t("To be handled by {deadline}. It is on your grid page in the console.",
                       deadline=t.datetime(request.due_at)))
        reply = Reply(text="\n".join(lines), rtl=t.rtl, language=t.language)
        queued += len(outbox.enqueue(session, chat, [reply_to_stored(reply, senior=False)],
                                     kind=URGENT_KIND,
                                     key=f"urgent:{request.id}:{staff.id}"))
    return queued


# --- 吹哨报到: escalation to a department -------------------------------------------------------

def escalate(session: Session, catalogs: Catalogs, tracking_number: str, department_id: str,
             note: str, actor: str, now: datetime | None = None) -> Escalation:
    """Escalates an open request to a department: the department takes it and its time limit
    starts now. The status stays; the history gets an event naming the department (in the
    resident's language, since the resident reads their history); the note is for staff."""
    now = now or utcnow()
    request = find(session, tracking_number)
    if request is None:
        raise RequestError(f"no request {tracking_number!r}")
    if request.status not in OPEN_STATUSES:
        raise RequestError(f"{request.tracking_number} is {request.status}: only an open "
                           "request can be escalated")
    note = (note or "").strip()
    if not note or len(note) > MAX_NOTE:
        raise RequestError(f"an escalation needs a note of 1 to {MAX_NOTE} characters")
    department = session.get(Department, department_id)
    if department is None or not department.active:
        raise RequestError(f"unknown department {department_id!r}")
    due = now + timedelta(hours=request.category.time_limit_hours)
    escalation = Escalation(request_id=request.id, at=now, actor=actor,
                            from_department_id=request.department_id,
                            to_department_id=department.id, note=note, due_at=due)
    session.add(escalation)
    t = catalogs.translator(request.language)
    request.events.append(RequestEvent(
        at=now, status=request.status, previous_status=request.status, actor=actor,
        note=t("Escalated to {department}.", department=t.name(department.names)),
        notify=False))
    request.department_id, request.due_at, request.updated_at = department.id, due, now
    session.flush()
    return escalation


def escalations_of(session: Session, request: Request) -> list[Escalation]:
    return list(session.execute(select(Escalation).where(
        Escalation.request_id == request.id).order_by(Escalation.id)).scalars())
