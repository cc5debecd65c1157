"""My requests: the resident's own requests, newest first, and one request's history."""

from __future__ import annotations

from bot.services import requests as service
from flows.base import Flow


def status_label(ctx, status: str) -> str:
    return ctx.t(service.STATUS_LABELS[status])


class MyRequests(Flow):
    name = "myrequests"

    def start(self, ctx) -> None:
        ctx.go(self.name, "list", slots={})

    def open(self, ctx, tracking_number: str) -> bool:
        """Shows one of the resident's own requests; False if they have none by that number."""
        request = service.find_for_resident(ctx.session, ctx.resident, tracking_number)
        if request is None:
            return False
        ctx.go(self.name, "detail", slots={"tracking_number": request.tracking_number})
        return True

    def prompt(self, ctx, step):
        if step == "detail":
            self._detail(ctx)
        else:
            self._list(ctx)

    def _list(self, ctx) -> None:
        t = ctx.t
        requests = service.for_resident(ctx.session, ctx.resident)
        if not requests:
            ctx.say(t("You have not reported any problems yet."))
            ctx.go("menu", "main", slots={})
            return
        lines = [t("Your requests, newest first:")]
        buttons = []
        for request in requests:
            category = t.name(ctx.config.category(request.category_id).names)
            line = t(
                "{tracking_number} · {category} · {status} · {date}",
                tracking_number=request.tracking_number,
                category=category,
                status=status_label(ctx, request.status),
                date=t.date(request.created_at),
            )
            if service.is_overdue(request):
                line += " · " + t("overdue")
            lines.append(line)
            buttons.append(
                ctx.button(
                    t("{tracking_number} {category}", tracking_number=request.tracking_number,
                      category=category),
                    f"req:{request.tracking_number}",
                )
            )
        ctx.say("\n".join(lines), buttons + [self.menu_button(ctx)])

    def _detail(self, ctx) -> None:
        t = ctx.t
        request = service.find_for_resident(
            ctx.session, ctx.resident, ctx.slots.get("tracking_number", "")
        )
        if request is None:
            ctx.go(self.name, "list", slots={})
            return
        place = request.location_text or f"{request.latitude:.5f}, {request.longitude:.5f}"
        lines = [
            t(
                "Request {tracking_number}\nCategory: {category}\nStatus: {status}\n"
                "Problem: {description}\nPlace: {place}\nReported: {date}",
                tracking_number=request.tracking_number,
                category=t.name(ctx.config.category(request.category_id).names),
                status=status_label(ctx, request.status),
                description=request.description,
                place=place,
                date=t.datetime(request.created_at),
            )
        ]
        if service.is_overdue(request):
            lines.append(
                t("It is past its time limit ({deadline}).", deadline=t.datetime(request.due_at))
            )
        lines.append(t("History:"))
        for event in request.events:
            line = t(
                "{date}: {status}",
                date=t.datetime(event.at),
                status=status_label(ctx, event.status),
            )
            if event.note:
                line += " · " + event.note
            if event.rating:
                line += " · " + t("rating {rating} of 5", rating=event.rating)
            lines.append(line)
        buttons = []
        if request.status == "resolved":
            buttons.append(ctx.button(t("Rate how it was handled"), f"rate:{request.tracking_number}"))
        buttons += [ctx.button(t("Back to my requests"), "back"), self.menu_button(ctx)]
        ctx.say("\n".join(lines), buttons)

    def on_button(self, ctx, step, payload):
        if step == "list" and payload.startswith("req:") and self.open(ctx, payload[4:]):
            return
        if step == "detail" and payload == "back":
            ctx.go(self.name, "list", slots={})
            return
        if step == "detail" and payload.startswith("rate:"):
            self.assistant.flow("rating").start(ctx, payload.split(":", 1)[1])
            return
        super().on_button(ctx, step, payload)
