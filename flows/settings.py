"""Settings: language, voice replies, senior mode, building or area, and erasing one's data."""

from __future__ import annotations

from bot.services import residents as resident_service
from flows.base import Flow
from flows.onboarding import language_buttons, language_from_text

# Flows left for good when the language changes; any other (a report half-written, a
# consultation) goes on in the new language.
NOT_RESUMED = frozenset({None, "menu", "settings", "onboarding"})


class Settings(Flow):
    name = "settings"
    text_steps = frozenset({"language", "building"})
    MAX_BUILDING = 64

    def start(self, ctx, step: str = "main") -> None:
        slots = {}
        if step == "language" and ctx.flow not in NOT_RESUMED:
            # Changing language in the middle of a report: the report goes on afterwards.
            slots["resume"] = {"flow": ctx.flow, "step": ctx.step, "slots": ctx.slots}
        ctx.go(self.name, step, slots=slots)

    def prompt(self, ctx, step):
        t = ctx.t
        if step == "language":
            ctx.say(t("Please choose your language."), language_buttons(ctx))
            return
        if step == "building":
            ctx.say(t("Which building or area do you live in? Type it the way the community "
                      "writes it, for example: 5. Some consultations are only for some "
                      "buildings."), [self.cancel_button(ctx)])
            return
        if step == "forget":
            ctx.say(
                t(
                    "This erases your profile and the record of our conversation. Your requests "
                    "stay, without your name, so that the community's figures stay true. "
                    "Erase your data now?"
                ),
                [
                    ctx.button(t("Yes, erase my data"), "forget:yes"),
                    ctx.button(t("No, keep it"), "forget:no"),
                ],
            )
            return
        resident = ctx.resident
        on, off = t("on"), t("off")
        ctx.say(
            t(
                "Settings\nLanguage: {language}\nVoice replies: {voice}\nSenior mode: {senior}",
                language=ctx.config.language(resident.language).native_name,
                voice=on if resident.voice_on else off,
                senior=on if resident.senior_mode else off,
            )
            + "\n"
            + t("Building or area: {building}", building=resident.building or t("not set")),
            [
                ctx.button(t("Change language"), "set:language"),
                ctx.button(t("Turn voice replies off") if resident.voice_on
                           else t("Turn voice replies on"), "set:voice"),
                ctx.button(t("Turn senior mode off") if resident.senior_mode
                           else t("Turn senior mode on"), "set:senior"),
                ctx.button(t("Set my building or area"), "set:building"),
                ctx.button(t("Delete my data"), "set:forget"),
                self.menu_button(ctx),
            ],
        )

    def yes_no(self, ctx, step):
        return ("forget:yes", "forget:no") if step == "forget" else None

    def on_button(self, ctx, step, payload):
        resident = ctx.resident
        if step == "main" and payload == "set:language":
            ctx.go(self.name, "language")
        elif step == "main" and payload == "set:voice":
            resident.voice_on = not resident.voice_on
            ctx.go(self.name, "main")
        elif step == "main" and payload == "set:senior":
            resident.senior_mode = not resident.senior_mode
            ctx.go(self.name, "main")
        elif step == "main" and payload == "set:building":
            ctx.go(self.name, "building")
        elif step == "building" and payload == "cancel":
            ctx.go(self.name, "main")
        elif step == "main" and payload == "set:forget":
            ctx.go(self.name, "forget")
        elif step == "language" and payload.startswith("lang:"):
            self.change_language(ctx, payload.split(":", 1)[1])
        elif step == "forget" and payload == "forget:yes":
            self.forget(ctx)
        elif step == "forget" and payload == "forget:no":
            ctx.main_menu(ctx.t("Nothing was erased."))
        else:
            super().on_button(ctx, step, payload)

    def on_text(self, ctx, step, text):
        if step == "building":
            if not any(ch.isalnum() for ch in text) or len(text) > self.MAX_BUILDING:
                ctx.say(ctx.t("Please type the building or area in {low} to {high} characters.",
                              low=1, high=self.MAX_BUILDING))
                ctx.show()
                return
            ctx.resident.building = text
            ctx.say(ctx.t("Saved. Building or area: {building}", building=text))
            ctx.go(self.name, "main")
            return
        language = language_from_text(ctx, text)
        if step == "language" and language:
            self.change_language(ctx, language)
            return
        ctx.say(ctx.t("Please choose your language by its number."))
        ctx.show()

    def change_language(self, ctx, language: str) -> None:
        if language not in ctx.config.language_ids:
            ctx.show()
            return
        resume = ctx.slots.get("resume") if ctx.flow == self.name else (
            None if ctx.flow in NOT_RESUMED else
            {"flow": ctx.flow, "step": ctx.step, "slots": ctx.slots})
        ctx.set_language(language)
        said = ctx.t("From now on I will write in {language}.",
                     language=ctx.config.language(language).native_name)
        if resume:
            ctx.say(said)
            ctx.go(resume["flow"], resume["step"], slots=resume["slots"])
            return
        ctx.main_menu(said)

    def forget(self, ctx) -> None:
        resident_service.forget(ctx.session, ctx.resident)
        ctx.say(ctx.t("Your data has been erased. Send /start if you want to begin again."))
