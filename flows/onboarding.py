"""First contact: the language picker (each language in its own script), then voice on/off."""

from __future__ import annotations

from bot.clip_gaps import voice_offered
from bot.text import guess_language
from flows.base import Flow


def language_buttons(ctx) -> list:
    return [ctx.button(lang.native_name, f"lang:{lang.id}") for lang in ctx.config.languages]


def language_from_text(ctx, text: str) -> str | None:
    """A language typed by its own name ('English', 'Монгол') or its id."""
    folded = text.strip().casefold()
    for lang in ctx.config.languages:
        if folded in (lang.native_name.casefold(), lang.id.casefold()):
            return lang.id
    return None


class Onboarding(Flow):
    name = "onboarding"
    text_steps = frozenset({"language"})

    def start(self, ctx, first_text: str = "", after: str | None = None) -> None:
        """`after`: a deep link (notice_12, poll_3) to open once the language is chosen."""
        chosen = language_from_text(ctx, first_text) if first_text else None
        if chosen:
            ctx.go(self.name, "language", show=False)
            self.choose_language(ctx, chosen)
            return
        greeted = bool(first_text and guess_language(first_text, ctx.config.language_ids))
        ctx.go(self.name, "language", slots={"greeted": greeted, "after": after})

    def prompt(self, ctx, step):
        if step == "voice":
            t = ctx.t
            ctx.say(
                t("Would you like me to read my replies aloud as well?"),
                [
                    ctx.button(t("Yes, read them aloud"), "voice:on"),
                    ctx.button(t("No, text is enough"), "voice:off"),
                ],
            )
            return
        # The picker: the greeting in the language the first message's script shows, else in
        # every language, so that nobody has to read Chinese to find their own.
        if ctx.slots.get("greeted") and ctx.resident.language is None:
            lines = [
                ctx.t(
                    "Hello! I am Linli, the assistant of {community}. Please choose your language.",
                    community=ctx.t.name(ctx.config.community_names),
                )
            ]
        else:
            lines = [
                self.assistant.catalogs.translator(lang)("Please choose your language.")
                for lang in ctx.config.language_ids
            ]
        ctx.say("\n".join(lines), language_buttons(ctx))

    def yes_no(self, ctx, step):
        return ("voice:on", "voice:off") if step == "voice" else None

    def on_button(self, ctx, step, payload):
        if step == "language" and payload.startswith("lang:"):
            language = payload.split(":", 1)[1]
            if language in ctx.config.language_ids:
                self.choose_language(ctx, language)
                return
        if step == "voice" and payload in ("voice:on", "voice:off"):
            self.finish(ctx, voice_on=payload == "voice:on")
            return
        super().on_button(ctx, step, payload)

    def finish(self, ctx, voice_on: bool) -> None:
        ctx.resident.voice_on = voice_on
        t = ctx.t
        welcome = t(
            "Welcome to {community}! You can change the language and voice any time "
            "under Settings.",
            community=t.name(ctx.config.community_names),
        )
        after = ctx.slots.get("after")
        if after:
            from flows.commands import open_deep_link

            ctx.say(welcome)
            if open_deep_link(ctx, after):
                return
        ctx.main_menu(None if after else welcome)

    def on_text(self, ctx, step, text):
        language = language_from_text(ctx, text)
        if language:
            self.choose_language(ctx, language)
            return
        ctx.say(ctx.t("Please choose your language by its number."))
        ctx.show()

    def choose_language(self, ctx, language: str) -> None:
        ctx.set_language(language)
        if not voice_offered(ctx.config, language):
            # No engine speaks it and no clip is recorded yet: "read aloud" would be silence.
            self.finish(ctx, voice_on=False)
            return
        ctx.go(self.name, "voice", slots={"after": ctx.slots.get("after")})
