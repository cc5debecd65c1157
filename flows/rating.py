"""Rating a resolved request 1–5; a rating of 1 or 2 offers to reopen it."""

from __future__ import annotations

from bot.services import requests as service
from flows.base import Flow

LOW_RATING = 2


class Rating(Flow):
    name = "rating"

    def start(self, ctx, tracking_number: str) -> None:
        ctx.go(self.name, "score", slots={"tracking_number": tracking_number})

    def _request(self, ctx):
        return service.find_for_resident(
            ctx.session, ctx.resident, ctx.slots.get("tracking_number", "")
        )

    def prompt(self, ctx, step):
        t = ctx.t
        request = self._request(ctx)
        if request is None or request.status != "resolved":
            ctx.main_menu(t("This request can no longer be rated."))
            return
        if step == "reopen":
            ctx.say(
                t("We are sorry it did not go well. Shall we reopen the request, so that "
                  "staff look at it again?"),
                [
                    ctx.button(t("Yes, reopen it"), "reopen:yes"),
                    ctx.button(t("No, close it"), "reopen:no"),
                ],
            )
            return
        ctx.say(
            t(
                "How happy are you with how request {tracking_number} was handled? "
                "Choose from 1 (very unhappy) to 5 (very happy).",
                tracking_number=request.tracking_number,
            ),
            [ctx.button("★" * score, f"score:{score}") for score in range(1, 6)]
            + [ctx.button(t("Later"), "later")],
        )

    def yes_no(self, ctx, step):
        return ("reopen:yes", "reopen:no") if step == "reopen" else None

    def on_button(self, ctx, step, payload):
        t = ctx.t
        tracking_number = ctx.slots.get("tracking_number", "")
        if step == "score" and payload.startswith("score:"):
            score = int(payload.split(":", 1)[1])
            if score <= LOW_RATING:
                ctx.go(self.name, "reopen", slots={"tracking_number": tracking_number,
                                                   "score": score})
                return
            self._finish(ctx, score, reopen=False)
            return
        if step == "reopen" and payload in ("reopen:yes", "reopen:no"):
            self._finish(ctx, int(ctx.slots["score"]), reopen=payload == "reopen:yes")
            return
        if payload == "later":
            ctx.main_menu(t("All right. You can rate it later under “My requests”."))
            return
        super().on_button(ctx, step, payload)

    def _finish(self, ctx, score: int, reopen: bool) -> None:
        t = ctx.t
        tracking_number = ctx.slots.get("tracking_number", "")
        try:
            service.rate(ctx.session, ctx.resident, tracking_number, score, reopen=reopen)
        except service.RequestError:
            ctx.main_menu(t("This request can no longer be rated."))
            return
        if reopen:
            text = t("Request {tracking_number} has been reopened. Staff will look at it again.",
                     tracking_number=tracking_number)
        else:
            text = t("Thank you for your rating. Request {tracking_number} is now closed.",
                     tracking_number=tracking_number)
        ctx.main_menu(text)
