"""Telling residents about staff changes to their requests, and asking for a rating."""

from __future__ import annotations

from bot.models import utcnow
from bot.services import requests as service


class Notifications:
    name = "notifications"

    def __init__(self, assistant):
        self.assistant = assistant

    def text(self, ctx, event) -> str:
        t = ctx.t
        request = event.request
        tracking_number = request.tracking_number
        if event.status == "accepted":
            department = ctx.config.department(request.department_id)
            text = t("Your request {tracking_number} has been accepted by {department}.",
                     tracking_number=tracking_number, department=t.name(department.names))
        elif event.status == "in_progress":
            text = t("Work on your request {tracking_number} has started.",
                     tracking_number=tracking_number)
        elif event.status == "resolved":
            text = t("Your request {tracking_number} has been resolved.",
                     tracking_number=tracking_number)
        elif event.status == "closed":
            text = t("Your request {tracking_number} has been closed.",
                     tracking_number=tracking_number)
        elif event.status == "reopened":
            text = t("Your request {tracking_number} has been reopened.",
                     tracking_number=tracking_number)
        elif event.status == "rejected":
            text = t("Your request {tracking_number} could not be accepted.",
                     tracking_number=tracking_number)
        elif event.status == "duplicate":
            original = ctx.session.get(type(request), request.duplicate_of_id)
            text = t("Your request {tracking_number} is about the same problem as {original}, "
                     "which is already being handled.", tracking_number=tracking_number,
                     original=original.tracking_number if original else "")
        else:
            raise ValueError(f"no notification for status {event.status!r}")
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
