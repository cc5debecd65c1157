"""Area alerts (应急预警): who an alert goes to, its crash-safe fan-out, answers, the check list.

An alert goes to every resident of its area who has chosen a language, whatever topics they
follow. The fan-out runs in batches, each one transaction that writes the resident's recipient
row and their outbox rows (keyed `alert:<id>:<resident id>`, sent before anything else queued):
killed half-way and run again, it queues exactly those not queued yet, so nobody is lost and
nobody gets the alert twice. A resident is on their grid's check list when they answered "I need
help", or when staff flagged them as living alone or elderly and they have not answered within
the alert's `check_after_minutes`; that is computed from the rows on every read, and the serving
process also records it at the moment it falls due (`watch_checks`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from bot.config import Config
from bot.db import Database
from bot.models import ALERT_PRIORITY, Alert, AlertRecipient, Resident, utcnow
from bot.places import listed_building
from bot.services import notices, outbox
from bot.specs import AlertSpec

log = logging.getLogger(__name__)

ANSWERS = ("safe", "help")
BATCH = 200  # residents a fan-out transaction queues
MAX_CHECK_WAIT = 30.0  # seconds between looks for alerts sent by another process


class AlertError(Exception):
    """A staff action on an alert that cannot be done; the message says why."""


@dataclass(frozen=True)
class CheckEntry:
    """A resident on a grid's check list for one alert."""

    resident_id: int
    grid_id: str | None
    building: str | None
    reason: str  # "help" or "no_answer"
    since: datetime


def delivery_prefix(alert_id: int) -> str:
    """The start of the outbox keys of one alert's messages: alert:<id>:<resident id>#0."""
    return f"alert:{alert_id}:"


def add(session: Session, spec: AlertSpec, created_by: str) -> Alert:
    alert = Alert(texts=spec.texts, severity=spec.severity, grids=list(spec.grids),
                  buildings=list(spec.buildings),
                  check_after_minutes=spec.check_after_minutes, created_by=created_by,
                  source=spec.source)
    session.add(alert)
    session.flush()
    return alert


# An alert's texts are chosen as a notice's: in the resident's language, else the default one.
text_for = notices.text_for


def place_of(config: Config, resident: Resident) -> tuple[str | None, str | None]:
    """The resident's grid and listed building (a building_key), from the building they gave."""
    found = listed_building(config, resident.building)
    if found is None:
        return None, None
    grid, building = found
    return grid.id, building.key


def in_area(alert: Alert, grid_id: str | None, building: str | None) -> bool:
    if not alert.grids and not alert.buildings:
        return True
    return (grid_id is not None and grid_id in alert.grids) or \
        (building is not None and building in alert.buildings)


def deadline(alert: Alert) -> datetime | None:
    """When silence puts a flagged resident on the check list (None before it is sent)."""
    if alert.sent_at is None:
        return None
    return alert.sent_at + timedelta(minutes=alert.check_after_minutes)


def send(db: Database, config: Config, alert_id: int,
         render: Callable[[Session, Resident, Alert], list[dict]],
         batch: int = BATCH) -> tuple[int, int]:
    """Queues the alert for every resident of its area not queued yet, `batch` residents a
    transaction; `render` returns a resident's outbox payloads (and may set their step).
    Returns (residents in the area, newly queued). Safe to run again after a crash."""
    with db.session() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise AlertError(f"there is no alert {alert_id}")
        if alert.sent_at is None:
            alert.sent_at = utcnow()
    queued, after = 0, 0
    while True:
        for attempt in range(3):
            try:
                with db.session() as session:
                    done, last = _send_batch(session, config, alert_id, render, after, batch)
                break
            except StaleDataError:  # a resident's turn changed their row meanwhile: again
                if attempt == 2:
                    raise
        queued += done
        if last is None:
            break
        after = last
    with db.session() as session:
        area = session.execute(
            select(AlertRecipient.id).where(AlertRecipient.alert_id == alert_id)
        ).all()
    return len(area), queued


def _send_batch(session: Session, config: Config, alert_id: int,
                render: Callable[[Session, Resident, Alert], list[dict]],
                after: int, batch: int) -> tuple[int, int | None]:
    """One transaction of the fan-out: residents with an id above `after`. Returns (queued,
    the last resident id looked at, or None at the end)."""
    alert = session.get(Alert, alert_id)
    residents = list(session.execute(
        select(Resident).where(Resident.id > after, Resident.language.is_not(None))
        .order_by(Resident.id).limit(batch)
    ).scalars())
    if not residents:
        return 0, None
    already = set(session.execute(
        select(AlertRecipient.resident_id).where(
            AlertRecipient.alert_id == alert_id,
            AlertRecipient.resident_id.in_([r.id for r in residents]))
    ).scalars())
    prefix = delivery_prefix(alert_id)
    queued = 0
    for resident in residents:
        grid_id, building = place_of(config, resident)
        if not in_area(alert, grid_id, building) or resident.id in already:
            continue
        session.add(AlertRecipient(alert_id=alert_id, resident_id=resident.id, grid_id=grid_id,
                                   building=building))
        # `already` was read in this transaction, and a recipient row and its outbox rows are
        # only ever written together: the key is new.
        outbox.enqueue(session, resident, render(session, resident, alert), kind="alert",
                       key=f"{prefix}{resident.id}", priority=ALERT_PRIORITY, new_key=True)
        queued += 1
    session.flush()
    return queued, residents[-1].id


def answer(session: Session, alert_id: int, resident: Resident, choice: str) -> AlertRecipient:
    """Records the resident's answer; the latest one counts. "help" puts them on the check
    list, "safe" takes them off it."""
    if choice not in ANSWERS:
        raise AlertError(f"{choice!r} is not an answer")
    row = session.execute(
        select(AlertRecipient).where(AlertRecipient.alert_id == alert_id,
                                     AlertRecipient.resident_id == resident.id)
    ).scalar_one_or_none()
    if row is None:
        raise AlertError(f"alert {alert_id} was not sent to this resident")
    now = utcnow()
    row.answer, row.answered_at = choice, now
    if choice == "help":
        row.check_reason, row.check_since = "help", now
    else:
        row.check_reason, row.check_since = None, None
    return row


def _flagged():
    return or_(Resident.lives_alone.is_(True), Resident.elderly.is_(True))


def check_list(session: Session, alert: Alert, now: datetime | None = None) -> list[CheckEntry]:
    """Who must be checked on: "I need help", and flagged residents silent past the check time
    (computed here from the rows: right even if no process was running when it fell due)."""
    now = now or utcnow()
    due = deadline(alert)
    overdue = (and_(AlertRecipient.answer.is_(None), _flagged()) if due is not None
               and now >= due else False)
    rows = session.execute(
        select(AlertRecipient).join(Resident, Resident.id == AlertRecipient.resident_id)
        .where(AlertRecipient.alert_id == alert.id,
               or_(AlertRecipient.answer == "help", overdue))
        .order_by(AlertRecipient.grid_id, AlertRecipient.building, AlertRecipient.id)
    ).scalars()
    return [CheckEntry(resident_id=row.resident_id, grid_id=row.grid_id, building=row.building,
                       reason="help" if row.answer == "help" else "no_answer",
                       since=row.check_since or due)
            for row in rows]


def counts(session: Session, alert_id: int) -> dict[str | None, dict[str, int]]:
    """Per grid (None: residents in no listed grid): safe, help and no_answer."""
    result: dict[str | None, dict[str, int]] = {}
    for grid_id, choice in session.execute(
            select(AlertRecipient.grid_id, AlertRecipient.answer)
            .where(AlertRecipient.alert_id == alert_id)).all():
        entry = result.setdefault(grid_id, {"safe": 0, "help": 0, "no_answer": 0})
        entry[choice or "no_answer"] += 1
    return result


def record_overdue(session: Session, now: datetime | None = None) -> int:
    """Marks flagged residents still silent past their alert's check time as "no_answer"
    (with the moment it fell due); returns how many were marked now."""
    now = now or utcnow()
    marked = 0
    for alert in session.execute(select(Alert).where(Alert.sent_at.is_not(None))).scalars():
        due = deadline(alert)
        if due > now:
            continue
        flagged = select(Resident.id).where(_flagged())
        result = session.execute(
            update(AlertRecipient)
            .where(AlertRecipient.alert_id == alert.id, AlertRecipient.answer.is_(None),
                   AlertRecipient.check_reason.is_(None),
                   AlertRecipient.resident_id.in_(flagged))
            .values(check_reason="no_answer", check_since=due)
            .execution_options(synchronize_session=False))
        marked += result.rowcount or 0
    return marked


def next_due(session: Session, now: datetime | None = None) -> datetime | None:
    """The earliest check time still ahead, of the alerts sent so far."""
    now = now or utcnow()
    times = [deadline(alert) for alert in session.execute(
        select(Alert).where(Alert.sent_at.is_not(None))).scalars()]
    ahead = [moment for moment in times if moment is not None and moment > now]
    return min(ahead, default=None)


async def watch_checks(db: Database, stop: asyncio.Event,
                       longest: float = MAX_CHECK_WAIT) -> None:
    """In the serving process: records each alert's silent flagged residents when the check
    time comes (asyncio; waiting at most `longest` seconds so alerts sent from the command
    line or another process are seen), until `stop` is set."""
    while not stop.is_set():
        try:
            with db.session() as session:
                marked = record_overdue(session)
                following = next_due(session)
            if marked:
                log.warning("%d resident(s) did not answer an area alert: on the check list",
                            marked)
            wait = longest if following is None else \
                min(longest, max(0.05, (following - utcnow()).total_seconds()))
        except Exception:  # a database hiccup must not end the watch
            log.exception("alert check round failed; trying again")
            wait = longest
        try:
            await asyncio.wait_for(stop.wait(), timeout=wait)
        except asyncio.TimeoutError:
            pass


def set_flags(session: Session, resident_id: int, *, lives_alone: bool,
              elderly: bool) -> Resident:
    """Staff's flags on a resident (the console audits the change)."""
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise AlertError(f"there is no resident {resident_id}")
    resident.lives_alone, resident.elderly = bool(lives_alone), bool(elderly)
    session.flush()
    return resident


def staff_list(session: Session) -> list[Alert]:
    return list(session.execute(select(Alert).order_by(Alert.id.desc())).scalars())
