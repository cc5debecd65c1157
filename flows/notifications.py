"""Telling residents about staff changes to their requests, and asking for a rating."""

from __future__ import annotations

from bot.i18n import N_
from bot.models import utcnow
from bot.services import requests as service

# What the resident is told about each status staff can set (a submission is their own act).
NOTICES = {
    "accepted": N_("Your request {tracking_number} has been accepted by {department}."),
    "in_progress": N_("Work on your request {tracking_number} has started."),
    "resolved": N_("Your request {tracking_number} has been resolved."),
    "closed": N_("Your request {tracking_number} has been closed."),
    "reopened": N_("Your request {tracking_number} has been reopened."),
    "rejected": N_("Your request {tracking_number} could not be accepted."),
    "duplicate": N_("Your request {tracking_number} is about the same problem as {original}, "
                    "which is already being handled."),
}


class Notifications:
    name = "notifications"

    def __init__(self, assistant):
        self.assistant = assistant

    def text(self, ctx, event) -> str:
        t = ctx.t
        request = event.request
        values = {"tracking_number": request.tracking_number}
        if event.status == "accepted":
            values["department"] = t.name(ctx.config.department(request.department_id).names)
        if event.status == "duplicate":
            original = ctx.session.get(type(request), request.duplicate_of_id)
            values["original"] = original.tracking_number if original else ""
        text = t(NOTICES[event.status], **values)
        if event.note:
            text += "\n" + t("Note from staff: {note}", note=event.note)
        return text

    def deliver(self, ctx) -> None:
        events = service.pending_notifications(ctx.session, ctx.resident)
        if not events:
            return
        now = utcnow()
        to_rate = None
        for event in events:
            ctx.say(self.text(ctx, event))
            event.notified_at = now
            if event.status == "resolved" and event.request.status == "resolved":
                to_rate = event.request.tracking_number
        if to_rate is None:
            return
        if ctx.resident.flow == "menu":
            self.assistant.flow("rating").start(ctx, to_rate)
        else:
            ctx.say(ctx.t("You can rate it under “My requests” when you are ready."))
