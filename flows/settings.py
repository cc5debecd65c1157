"""Settings: language, voice replies, senior mode, building or area, and erasing one's data."""

from __future__ import annotations

import unicodedata

from bot.services import residents as resident_service
from flows.base import Flow
from flows.onboarding import language_buttons, language_from_text, save_building

# Flows left for good when the language changes; any other (a report half-written, a
# consultation) goes on in the new language.
NOT_RESUMED = frozenset({None, "menu", "settings", "onboarding"})


class Settings(Flow):
    name = "settings"
    # At "forget" and "forget_word" typed text is read as the erase word, never as a choice.
    text_steps = frozenset({"language", "building", "forget", "forget_word"})

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
            # The safe choice is 1: a resident pressing 1 again and again never erases.
            ctx.say(
                t("Erasing your data removes your profile and our conversation.\n"
                  "Finished requests keep only their category, dates and rating: their "
                  "description, place, photos and voice notes are erased.\n"
                  "Open requests keep what staff need to finish the job, with phone numbers "
                  "and addresses hidden, and are erased in the same way when they close.\n"
                  "Your words that were used to teach Linli are removed too.")
                + "\n" + t("To erase, type the word {word} or choose 2. To keep your data, "
                            "choose 1.", word=self.erase_word(ctx)),
                [
                    ctx.button(t("No, keep my data"), "forget:no"),
                    ctx.button(t("Yes, erase"), "forget:yes"),
                ],
            )
            return
        if step == "forget_word":
            ctx.say(t("To erase your data, type the word {word}. Nothing has been erased yet.",
                      word=self.erase_word(ctx)),
                    [ctx.button(t("No, keep my data"), "forget:no")])
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
                ctx.button(t("Volunteer in your grid"), "set:volunteer"),
                self.menu_button(ctx),
            ],
        )

    def yes_no(self, ctx, step):
        # "Yes" in free text is not the erase word: it only asks for the word.
        return ("forget:word", "forget:no") if step in ("forget", "forget_word") else None

    @staticmethod
    def erase_word(ctx) -> str:
        # TRANSLATORS: the one word a resident types to confirm erasing their data. One word,
        # in capitals where the script has them, easy to type on a phone.
        return ctx.t("ERASE")

    def is_erase_word(self, ctx, text: str) -> bool:
        """The typed text is the erase word (any case, full-width or not, stray punctuation
        and spaces ignored)."""
        def folded(value: str) -> str:
            value = unicodedata.normalize("NFKC", value).casefold()
            return "".join(ch for ch in value if unicodedata.category(ch)[0] not in "PZC")
        return bool(folded(text)) and folded(text) == folded(self.erase_word(ctx))

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
        elif step == "main" and payload == "set:volunteer":
            self.assistant.flow("volunteers").start(ctx)
        elif step == "language" and payload.startswith("lang:"):
            self.change_language(ctx, payload.split(":", 1)[1])
        elif step == "forget" and payload == "forget:yes" and ctx.incoming.kind == "button":
            self.forget(ctx)  # the "Yes, erase" button itself, tapped
        elif step in ("forget", "forget_word") and payload in ("forget:yes", "forget:word"):
            # Typed "2" (or "yes"): a number is too easy to type by mistake; ask for the word.
            ctx.go(self.name, "forget_word")
        elif step in ("forget", "forget_word") and payload == "forget:no":
            ctx.main_menu(ctx.t("Nothing was erased."))
        else:
            super().on_button(ctx, step, payload)

    def on_text(self, ctx, step, text):
        if step in ("forget", "forget_word"):
            if self.is_erase_word(ctx, text):
                self.forget(ctx)
                return
            ctx.say(ctx.t("Nothing was erased."))
            ctx.show()
            return
        if step == "building":
            if save_building(ctx, text):
                ctx.go(self.name, "main")
            else:
                ctx.show()
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
        resident_service.forget(ctx.session, ctx.resident, ctx.config.data_dir)
        ctx.say(ctx.t("Your data has been erased. Send /start if you want to begin again."))
