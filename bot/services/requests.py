"""Service requests: submit, list a resident's own, change status, rate, and overdue rules."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.i18n import N_
from bot.models import (
    NEWS_KINDS,
    Attachment,
    Category,
    OutboxMessage,
    Request,
    RequestEvent,
    Resident,
    utcnow,
)
from bot.text import mask_contacts

log = logging.getLogger(__name__)

STATUS_LABELS = {
    "submitted": N_("Submitted"),
    "accepted": N_("Accepted"),
    "in_progress": N_("In progress"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
    "reopened": N_("Reopened"),
    "rejected": N_("Rejected"),
    "duplicate": N_("Duplicate"),
}
STATUSES = tuple(STATUS_LABELS)
OPEN_STATUSES = frozenset({"submitted", "accepted", "in_progress", "reopened"})
# Nothing more will be done for these (a closed one can still be reopened by staff).
FINISHED_STATUSES = frozenset({"closed", "rejected", "duplicate"})
# What staff may change a status to, from each status.
STAFF_TRANSITIONS = {
    "submitted": {"accepted", "in_progress", "resolved", "rejected", "duplicate"},
    "accepted": {"in_progress", "resolved", "rejected", "duplicate"},
    "in_progress": {"resolved", "rejected", "duplicate"},
    "reopened": {"accepted", "in_progress", "resolved", "rejected", "duplicate"},
    "resolved": {"reopened", "closed"},
    "closed": {"reopened"},
    "rejected": {"reopened"},
    "duplicate": {"reopened"},
}
TRACKING_PREFIX = "R-"
MAX_DESCRIPTION = 1000
MAX_LOCATION = 300


class RequestError(Exception):
    """A change that the rules do not allow; the message names what is wrong."""


@dataclass(frozen=True)
class Draft:
    category_id: str
    description: str
    location_text: str | None
    latitude: float | None = None
    longitude: float | None = None
    # Photos and a voice note: dicts with kind, file_id, path, mime, size, duration.
    attachments: tuple[dict, ...] = ()
    # The grid (网格) of its place, by bot.places.grid_for; None outside every listed grid.
    grid_id: str | None = None


def _new_tracking_number(session: Session) -> str:
    """`R-` and six digits, random so that numbers reveal nothing and are hard to guess."""
    for _ in range(50):
        candidate = f"{TRACKING_PREFIX}{secrets.randbelow(900000) + 100000}"
        exists = session.execute(
            select(Request.id).where(Request.tracking_number == candidate)
        ).first()
        if not exists:
            return candidate
    raise RuntimeError("could not find a free tracking number after 50 tries")


def normalise_tracking_number(text: str) -> str:
    """'r-123456', 'R123456' and 'R－123456' all become 'R-123456'."""
    raw = text.strip().upper().replace("－", "-").replace("—", "-").replace(" ", "")
    digits = raw.removeprefix("R").lstrip("-")
    return f"{TRACKING_PREFIX}{digits}" if digits.isdigit() else raw


def submit(session: Session, resident: Resident, draft: Draft, channel: str) -> Request:
    """Files a request from a confirmed draft; the only way a request comes to exist."""
    category = session.get(Category, draft.category_id)
    if category is None or not category.active:
        raise RequestError(f"unknown category {draft.category_id!r}")
    description = draft.description.strip()
    spoken = any(a.get("kind") == "voice" for a in draft.attachments)
    if (not description and not spoken) or len(description) > MAX_DESCRIPTION:
        raise RequestError("a description of 1 to 1000 characters, or a voice note, is needed")
    if draft.location_text is None and draft.latitude is None:
        raise RequestError("a location is needed")
    now = utcnow()
    request = Request(
        tracking_number=_new_tracking_number(session),
        resident_id=resident.id,
        category_id=category.id,
        department_id=category.department_id,
        grid_id=draft.grid_id,
        description=description,
        location_text=(draft.location_text or "")[:MAX_LOCATION] or None,
        latitude=draft.latitude,
        longitude=draft.longitude,
        language=resident.language or "",
        channel=channel,
        status="submitted",
        created_at=now,
        updated_at=now,
        due_at=now + timedelta(hours=category.time_limit_hours),
    )
    request.events = [RequestEvent(at=now, status="submitted", actor="resident")]
    request.attachments = [
        Attachment(
            kind=a["kind"],
            channel=channel,
            file_id=a["file_id"],
            path=a.get("path"),
            mime=a.get("mime"),
            size=a.get("size"),
            duration=a.get("duration"),
            created_at=now,
        )
        for a in draft.attachments
    ]
    session.add(request)
    session.flush()
    return request


def for_resident(session: Session, resident: Resident, limit: int = 10) -> list[Request]:
    """The resident's own requests, newest first."""
    return list(
        session.execute(
            select(Request)
            .where(Request.resident_id == resident.id)
            .order_by(Request.created_at.desc(), Request.id.desc())
            .limit(limit)
        ).scalars()
    )


def find_for_resident(session: Session, resident: Resident, tracking_number: str) -> Request | None:
    """A request by tracking number, only if it is this resident's own."""
    return session.execute(
        select(Request).where(
            Request.tracking_number == normalise_tracking_number(tracking_number),
            Request.resident_id == resident.id,
        )
    ).scalar_one_or_none()


def find(session: Session, tracking_number: str) -> Request | None:
    """Any request by tracking number: for staff tools only."""
    return session.execute(
        select(Request).where(Request.tracking_number == normalise_tracking_number(tracking_number))
    ).scalar_one_or_none()


def is_overdue(request: Request, now: datetime | None = None) -> bool:
    return request.status in OPEN_STATUSES and (now or utcnow()) > request.due_at


def staff_list(
    session: Session, status: str | None = None, overdue: bool = False
) -> list[Request]:
    query = select(Request).order_by(Request.created_at.desc(), Request.id.desc())
    if status:
        if status not in STATUSES:
            raise RequestError(f"unknown status {status!r}; one of: {', '.join(STATUSES)}")
        query = query.where(Request.status == status)
    if overdue:
        query = query.where(
            Request.status.in_(sorted(OPEN_STATUSES)), Request.due_at < utcnow()
        )
    return list(session.execute(query).scalars())


def _record(
    session: Session,
    request: Request,
    status: str,
    actor: str,
    note: str | None = None,
    rating: int | None = None,
    notify: bool = False,
) -> RequestEvent:
    now = utcnow()
    event = RequestEvent(
        at=now,
        status=status,
        previous_status=request.status,
        note=note,
        rating=rating,
        actor=actor,
        notify=notify,
    )
    request.status = status
    request.updated_at = now
    request.events.append(event)  # through the relationship, so request.events stays current
    session.flush()
    return event


def change_status(
    session: Session,
    tracking_number: str,
    status: str,
    actor: str,
    note: str | None = None,
    department_id: str | None = None,
    duplicate_of: str | None = None,
    data_dir: Path | None = None,
) -> RequestEvent:
    """A staff change of status; the resident is told at their next turn, in their language.

    A request whose writer erased their data while it was open loses its description, place,
    photos and voice notes when it is finished: `data_dir` is the data folder the media are
    kept under (their files are deleted), needed for such a request.
    """
    request = find(session, tracking_number)
    if request is None:
        raise RequestError(f"no request {tracking_number!r}")
    if status not in STATUSES:
        raise RequestError(f"unknown status {status!r}; one of: {', '.join(STATUSES)}")
    allowed = STAFF_TRANSITIONS[request.status]
    if status not in allowed:
        raise RequestError(
            f"{request.tracking_number} is {request.status}; it can go to: "
            f"{', '.join(sorted(allowed)) or 'nothing'}"
        )
    note = (note or "").strip() or None
    if status == "rejected" and not note:
        raise RequestError("a rejection needs a reason: give it with --note")
    if status == "duplicate":
        if not duplicate_of:
            raise RequestError("a duplicate needs the request it duplicates: --duplicate-of R-…")
        original = find(session, duplicate_of)
        if original is None or original.id == request.id:
            raise RequestError(f"no other request {duplicate_of!r}")
        request.duplicate_of_id = original.id
    if department_id:
        from bot.models import Department

        if session.get(Department, department_id) is None:
            raise RequestError(f"unknown department {department_id!r}")
        request.department_id = department_id
    now = utcnow()
    if status == "resolved":
        request.resolved_at = now
    if status == "closed":
        request.closed_at = now
    if status == "reopened":
        request.resolved_at = request.closed_at = None
        request.due_at = now + timedelta(hours=request.category.time_limit_hours)
    event = _record(session, request, status, actor, note=note,
                    notify=request.resident_id is not None)
    if status in FINISHED_STATUSES and request.erase_when_finished:
        if data_dir is None:
            raise ValueError("erasing a finished request needs the data folder (data_dir)")
        erase_personal(session, request, data_dir)
    return event


# --- /forget ------------------------------------------------------------------------------

def forget_requests(session: Session, resident: Resident, data_dir: Path) -> int:
    """The resident erased their data: finished requests lose their description, place,
    photos and voice notes now; open ones keep them for staff with phones and addresses
    masked, and lose them when finished. Category, times, status history (staff's notes are
    staff's words) and rating stay, so the community's figures stay true. Returns how many
    requests were erased now."""
    erased = 0
    for request in session.execute(
            select(Request).where(Request.resident_id == resident.id)).scalars():
        if request.status in FINISHED_STATUSES:
            erase_personal(session, request, data_dir)
            erased += 1
        else:
            request.description = mask_contacts(request.description)
            request.erase_when_finished = True
        request.resident_id = None
    session.flush()
    return erased


def erase_personal(session: Session, request: Request, data_dir: Path) -> None:
    """Erases what the resident wrote and sent with the request, files on disk included."""
    for attachment in list(request.attachments):
        delete_media(data_dir, attachment.path)
        session.delete(attachment)
    request.attachments = []
    request.description = ""
    request.location_text = None
    request.latitude = request.longitude = None
    request.erase_when_finished = False
    request.erased_at = utcnow()
    session.flush()


def delete_media(data_dir: Path, relative: str | None) -> None:
    """Deletes a stored photo or voice note, only from under <data dir>/media."""
    if not relative:
        return
    root = (Path(data_dir) / "media").resolve()
    path = (Path(data_dir) / relative).resolve()
    if root not in path.parents:
        log.warning("a media path outside %s was not deleted", root)
        return
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not delete a media file under %s: %s", root, type(exc).__name__)


def rate(session: Session, resident: Resident, tracking_number: str, rating: int, reopen: bool):
    """The resident's rating of a resolved request: closes it, or reopens it if asked."""
    if not 1 <= rating <= 5:
        raise RequestError("a rating is a whole number from 1 to 5")
    request = find_for_resident(session, resident, tracking_number)
    if request is None or request.status != "resolved":
        raise RequestError("only a resolved request of your own can be rated")
    now = utcnow()
    request.rating, request.rated_at = rating, now
    if reopen:
        request.resolved_at = None
        request.due_at = now + timedelta(hours=request.category.time_limit_hours)
        return _record(session, request, "reopened", "resident", rating=rating)
    request.closed_at = now
    return _record(session, request, "closed", "resident", rating=rating)


def pending_notifications(session: Session, resident: Resident) -> list[RequestEvent]:
    """Staff changes this resident has not been told about yet, oldest first."""
    return list(
        session.execute(
            select(RequestEvent)
            .join(Request, Request.id == RequestEvent.request_id)
            .where(
                Request.resident_id == resident.id,
                RequestEvent.notify.is_(True),
                RequestEvent.notified_at.is_(None),
            )
            .order_by(RequestEvent.id)
        ).scalars()
    )


def residents_with_news(session: Session, channel: str, limit: int = 200) -> list[str]:
    """Chat ids on `channel` of residents with status changes they have not been told about,
    and of residents in a flow whose chat ends with a notice or a poll's results sent since
    their last turn (their push turn shows the step again below it)."""
    return list(dict.fromkeys(_residents_with_changes(session, channel, limit)
                              + _residents_behind_news(session, channel, limit)))[:limit]


def _residents_behind_news(session: Session, channel: str, limit: int) -> list[str]:
    newest = (select(func.max(OutboxMessage.id)).where(OutboxMessage.resident_id == Resident.id)
              .correlate(Resident).scalar_subquery())
    return list(session.execute(
        select(Resident.channel_user_id)
        .join(OutboxMessage, OutboxMessage.id == newest)
        .where(Resident.channel == channel, Resident.flow.isnot(None),
               OutboxMessage.kind.in_(sorted(NEWS_KINDS)), OutboxMessage.status == "sent")
        .limit(limit)
    ).scalars())


def _residents_with_changes(session: Session, channel: str, limit: int) -> list[str]:
    rows = session.execute(
        select(Resident.channel_user_id)
        .join(Request, Request.resident_id == Resident.id)
        .join(RequestEvent, RequestEvent.request_id == Request.id)
        .where(
            Resident.channel == channel,
            RequestEvent.notify.is_(True),
            RequestEvent.notified_at.is_(None),
        )
        .group_by(Resident.channel_user_id)
        .limit(limit)
    ).scalars()
    return list(rows)
