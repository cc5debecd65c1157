"""The shape every flow has: a prompt per step, and handlers for buttons, text and locations."""

from __future__ import annotations

from abc import ABC, abstractmethod

from flows.context import Context, Host


class Flow(ABC):
    """A conversation flow whose state (step and slots) lives on the resident's row."""

    name = ""
    text_steps: frozenset[str] = frozenset()  # steps where typed text is an answer
    # Steps whose incoming turn is logged without its text or button (a ballot, an opinion).
    private_steps: frozenset[str] = frozenset()

    def __init__(self, assistant: Host):
        self.assistant = assistant

    @abstractmethod
    def prompt(self, ctx: Context, step: str | None) -> None:
        """Says what the resident is asked at `step`, with its buttons."""

    def accepts_text(self, step: str | None) -> bool:
        return step in self.text_steps

    def yes_no(self, ctx: Context, step: str | None) -> tuple[str, str] | None:
        """The payloads that "yes" and "no" in free text press at this step, if any."""
        return None

    def on_button(self, ctx: Context, step: str | None, payload: str) -> None:
        """Buttons shared by every flow; flows handle their own first and fall back here."""
        t = ctx.t
        if payload == "menu":
            ctx.main_menu()
        elif payload == "cancel":
            ctx.main_menu(t("Cancelled. Nothing was saved."))
        else:
            ctx.say(t("That menu has expired. Here is the current step again."))
            ctx.show()

    def claims_text(self, ctx: Context, step: str | None, text: str) -> bool:
        """Typed text read against the step before the NLU may take it elsewhere (a poll's
        options); True if the flow has handled it. By default nothing is claimed."""
        return False

    def on_text(self, ctx: Context, step: str | None, text: str) -> None:
        ctx.say(ctx.t("I did not understand that. Please choose one of the numbers below."))
        ctx.show()

    def on_spoken_text(self, ctx: Context, step: str | None, text: str, media: dict) -> None:
        """A voice note's transcript where the step takes text: as if typed. A flow that
        keeps the audio for staff (a request's description) overrides this."""
        self.on_text(ctx, step, text)

    def on_location(self, ctx: Context, step: str | None, latitude, longitude) -> None:
        ctx.say(ctx.t("A location is not needed at this step."))
        ctx.show()

    def on_media(self, ctx: Context, step: str | None, kind: str, media: dict) -> None:
        """A photo or voice note where the step does not take one."""
        t = ctx.t
        if kind == "photo":
            ctx.say(t("Thank you for the photo. Photos can be added when you report a problem."))
        else:
            ctx.say(t("I cannot listen to voice notes at this step. "
                      "Please type, or choose a number."))
        ctx.show()

    # Buttons every step can offer.
    def cancel_button(self, ctx: Context):
        return ctx.button(ctx.t("Cancel"), "cancel")

    def menu_button(self, ctx: Context):
        return ctx.button(ctx.t("Main menu"), "menu")
