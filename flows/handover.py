"""Talk to staff: the resident's messages are kept for staff, who answer from the console.

In the `handover` flow a resident's messages are stored as turns (flow "handover"); the
assistant does not interpret them and only confirms with one short line that each arrived. Staff read them
in the console (bot/console), answer through the outbox (`answer`) and hand the resident back to
the main menu (`hand_back`). Outside the staff hours of config.yml the acknowledgement says when
someone will reply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.i18n import Catalogs, Translator
from bot.messages import Button, Reply, reply_to_stored
from bot.models import OutboxMessage, Resident, Turn, utcnow
from bot.services import outbox
from flows.base import Flow
from flows.menu import MENU_ENTRIES

FLOW = "handover"
ANSWER_KIND = "staff-answer"  # outbox rows that carry a staff member's answer
MAX_ANSWER = 2000


class HandoverError(Exception):
    """A staff action on a handover that cannot be done; the message says why."""


def opens_next(config, now: datetime) -> datetime | None:
    """None while staff are at work at `now` (naive UTC), else when they next start (UTC)."""
    local = now.replace(tzinfo=timezone.utc).astimezone(config.tz)
    if config.staff_hours.is_open(local):
        return None
    opening = config.staff_hours.next_opening(local)
    return opening.astimezone(timezone.utc).replace(tzinfo=None)


class Handover(Flow):
    name = FLOW
    text_steps = frozenset({"waiting"})

    def __init__(self, assistant):
        super().__init__(assistant)
        # The clock the staff hours are read with (tests set it to a chosen moment).
        self.now: Callable[[], datetime] = utcnow

    def start(self, ctx) -> None:
        t = ctx.t
        ctx.go(FLOW, "waiting", slots={"since": utcnow().isoformat()}, show=False)
        lines = [t("You are now writing to the community staff. "
                   "Type your message here. Staff will answer in this chat.")]
        opening = opens_next(ctx.config, self.now())
        if opening is not None:
            lines.append(t("Staff are not at work now. Someone will reply from {time}.",
                           time=t.datetime(opening)))
        ctx.say("\n".join(lines), [self.back_button(ctx)])

    def back_button(self, ctx):
        return ctx.button(ctx.t("Back to the assistant"), "menu")

    def prompt(self, ctx, step):
        ctx.say(ctx.t("Your messages go to the community staff. They will answer in this chat."),
                [self.back_button(ctx)])

    def on_text(self, ctx, step, text):
        # The turn itself keeps the message for staff; it is not the NLU's (no inbox entry).
        ctx.understanding = None
        self.receipt(ctx)

    def on_media(self, ctx, step, kind, media):
        self.receipt(ctx)  # the turn keeps the file's path for staff

    def on_location(self, ctx, step, latitude, longitude):
        self.receipt(ctx)  # the turn keeps the coordinates for staff

    def receipt(self, ctx) -> None:
        """One short line, so the resident knows the message arrived (every turn is answered,
        and the way back stays one button away)."""
        ctx.say(ctx.t("Sent to the staff."), [self.back_button(ctx)])

    def on_button(self, ctx, step, payload):
        if payload in ("menu", "cancel"):
            ctx.main_menu(ctx.t("You are back with the assistant."))
        else:
            super().on_button(ctx, step, payload)


# --- the staff side ------------------------------------------------------------------------

@dataclass
class Waiting:
    """One resident in the handover queue."""

    resident: Resident
    since: datetime  # when they asked for staff
    last_message: Turn | None
    waiting_since: datetime | None  # their first message not yet answered; None if answered


def _since(resident: Resident) -> datetime:
    try:
        return datetime.fromisoformat(str((resident.slots or {}).get("since")))
    except ValueError:
        return datetime(1970, 1, 1)


def messages(session: Session, resident: Resident) -> list[Turn]:
    """What the resident sent since asking for staff, oldest first."""
    return list(session.execute(
        select(Turn).where(Turn.resident_id == resident.id, Turn.direction == "in",
                           Turn.flow == FLOW, Turn.at >= _since(resident))
        .order_by(Turn.at, Turn.id)).scalars())


def answers(session: Session, resident: Resident) -> list[OutboxMessage]:
    """Staff answers to this resident since they asked for staff, oldest first."""
    return list(session.execute(
        select(OutboxMessage).where(OutboxMessage.resident_id == resident.id,
                                    OutboxMessage.kind == ANSWER_KIND,
                                    OutboxMessage.created_at >= _since(resident))
        .order_by(OutboxMessage.id)).scalars())


def queue(session: Session) -> list[Waiting]:
    """Residents talking to staff now: the longest waiting for an answer first."""
    rows = []
    for resident in session.execute(
            select(Resident).where(Resident.flow == FLOW)).scalars():
        said = messages(session, resident)
        answered = [row.created_at for row in answers(session, resident)]
        last_answer = max(answered) if answered else None
        unanswered = [turn.at for turn in said if last_answer is None or turn.at > last_answer]
        if not said and not answered:  # asked for staff, wrote nothing yet: waiting all the same
            unanswered = [_since(resident)]
        rows.append(Waiting(resident, _since(resident), said[-1] if said else None,
                            min(unanswered) if unanswered else None))
    rows.sort(key=lambda w: (w.waiting_since is None, w.waiting_since or w.since))
    return rows


def find(session: Session, resident_id: int) -> Resident:
    resident = session.get(Resident, resident_id)
    if resident is None or resident.flow != FLOW:
        raise HandoverError("This resident is not waiting for staff.")
    return resident


def answer(session: Session, catalogs: Catalogs, resident_id: int, text: str) -> OutboxMessage:
    """Queues a staff answer for the resident's chat, marked with their language."""
    text = text.strip()
    if not text:
        raise HandoverError("The answer is empty.")
    if len(text) > MAX_ANSWER:
        raise HandoverError("The answer is longer than {limit} characters.")
    resident = find(session, resident_id)
    t = catalogs.translator(resident.language)
    payload = _payload(t, resident, t("Reply from the community staff:") + "\n" + text,
                       [[t("Back to the assistant"), "menu"]])
    # The answer's button works when tapped in a chat app; the step's buttons keep their
    # numbers (the answer is news: it never takes over what "1" means).
    if "menu" not in (resident.offered or []):
        resident.offered = [*(resident.offered or []), "menu"]
    return outbox.enqueue(session, resident, [payload], kind=ANSWER_KIND)[0]


def hand_back(session: Session, catalogs: Catalogs, resident_id: int) -> Resident:
    """Returns the resident to the main menu and tells them so, in their language."""
    resident = find(session, resident_id)
    t = catalogs.translator(resident.language)
    resident.flow, resident.step, resident.slots = "menu", "main", {}
    buttons = [[t(label), payload] for payload, label in MENU_ENTRIES]
    payload = _payload(t, resident, t("The staff have handed you back to the assistant.") + "\n"
                       + t("What would you like to do? Choose a number."), buttons)
    outbox.enqueue(session, resident, [payload], kind="push")
    resident.offered = [payload for _, payload in buttons]
    return resident


def _payload(t: Translator, resident: Resident, text: str, buttons: list[list[str]]) -> dict:
    reply = Reply(text=text, buttons=[Button(label, data) for label, data in buttons],
                  rtl=t.rtl, language=t.language)
    return reply_to_stored(reply, senior=bool(resident.senior_mode))
