"""First contact: the language picker (each language in its own script), then voice on/off,
then the resident's building, offered once beside the main menu (skippable).

A newcomer's first message is answered in the language its script shows, with that language
as choice 1, and kept: once the resident confirms a language, it is acted on (a problem goes
straight into a report) instead of being asked for again.
"""

from __future__ import annotations

from bot.clip_gaps import voice_offered
from bot.messages import NLU_UNAVAILABLE, Understanding
from bot.places import find_place, listed_building
from bot.text import guess_language
from flows.base import Flow
from flows.menu import MENU_ENTRIES

# First words that only open the conversation: after the language, the voice question follows.
GREETINGS = frozenset({"greet", "thank", "affirm"})
MAX_BUILDING = 64  # characters of a building or area as typed (Resident.building)
# What the NLU calls a building ("5号楼", "5-р байр", "building 5"), named or not: kept as typed,
# not acted on.
NOT_AN_ACTION = frozenset({"nlu_fallback", "out_of_scope"})


def save_building(ctx, text: str) -> bool:
    """Keeps the resident's building as typed (the place it names, if one of config.yml's
    place patterns finds it), and says so: with its grid when the building is listed, plainly
    when it is not. False (after asking again) if the text cannot be a building."""
    t = ctx.t
    text = " ".join(text.split())
    if not any(ch.isalnum() for ch in text) or len(text) > MAX_BUILDING:
        ctx.say(t("Please type the building or area in {low} to {high} characters.",
                  low=1, high=MAX_BUILDING))
        return False
    building = find_place(ctx.config, text) or text
    ctx.resident.building = building
    listed = listed_building(ctx.config, building)
    if listed:
        ctx.say(t("Saved. Building or area: {building}", building=building) + "\n"
                + t("It is in {grid}.", grid=t.name(listed[0].names)))
    else:
        ctx.say(t("Saved. Building or area: {building}", building=building) + "\n"
                + t("It is not on the community's list of buildings, so it is kept as you "
                    "typed it."))
    return True


def language_buttons(ctx, first: str | None = None) -> list:
    """One button per language, in its own script; `first` (a guessed language) leads."""
    languages = sorted(ctx.config.languages, key=lambda lang: lang.id != first)
    return [ctx.button(lang.native_name, f"lang:{lang.id}") for lang in languages]


def language_from_text(ctx, text: str) -> str | None:
    """A language typed by its own name ('English', 'Монгол') or its id."""
    folded = text.strip().casefold()
    for lang in ctx.config.languages:
        if folded in (lang.native_name.casefold(), lang.id.casefold()):
            return lang.id
    return None


class Onboarding(Flow):
    name = "onboarding"
    text_steps = frozenset({"language", "building"})

    def start(self, ctx, after: str | None = None) -> None:
        """`after`: a deep link (notice_12, poll_3) to open once the language is chosen."""
        ctx.go(self.name, "language", slots={"after": after})

    def first_message(self, ctx, text: str, understanding: Understanding | None) -> None:
        """Free text from a resident with no language yet: a language's name chooses it;
        anything else is kept, and answered by the picker in the language its script shows."""
        chosen = language_from_text(ctx, text)
        if chosen:
            ctx.go(self.name, "language", show=False)
            self.choose_language(ctx, chosen)
            return
        slots = ctx.slots if ctx.flow == self.name else {}
        guessed = guess_language(text, ctx.config.languages, ctx.config.default_language)
        pending = {"text": text}
        if understanding is not None and understanding.intent != NLU_UNAVAILABLE:
            pending.update(intent=understanding.intent, confidence=understanding.confidence,
                           entities=understanding.entities,
                           ranking=[list(pair) for pair in understanding.ranking])
        ctx.go(self.name, "language", slots={
            "after": slots.get("after"),
            "guessed": guessed or slots.get("guessed"),
            "pending": pending,
        })

    def prompt(self, ctx, step):
        if step == "building":
            t = ctx.t
            # The main menu's choices stay where they always are: pressing one skips the question.
            ctx.say(t("Which building do you live in? Type it, for example: building 5. Or "
                      "choose a number below; you can set it later under Settings."),
                    [ctx.button(t(label), payload) for payload, label in MENU_ENTRIES]
                    + [ctx.button(t("Skip this question"), "building:skip")])
            return
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
        # The picker: a greeting in the language the first message's script showed, which is
        # choice 1; without one, the question in every language, so that nobody has to read
        # Chinese to find their own.
        guessed = ctx.slots.get("guessed")
        if guessed in ctx.config.language_ids and ctx.resident.language is None:
            t = self.assistant.catalogs.translator(guessed)
            lines = [t(
                "Hello! I am Linli, the assistant of {community}. Choose 1 to go on in "
                "{language}, or the number of another language.",
                community=t.name(ctx.config.community_names),
                language=ctx.config.language(guessed).native_name,
            )]
            if ctx.slots.get("pending"):
                lines.append(t("I have kept your message and will answer it once you have "
                               "chosen."))
        else:
            lines = [
                self.assistant.catalogs.translator(lang)("Please choose your language.")
                for lang in ctx.config.language_ids
            ]
        ctx.say("\n".join(lines), language_buttons(ctx, guessed))

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
        if step == "building" and payload == "building:skip":
            ctx.main_menu(ctx.t("You can set your building any time under Settings."))
            return
        if step == "building" and payload.startswith("menu:"):
            self.assistant.flow("menu").on_button(ctx, "main", payload)
            return
        super().on_button(ctx, step, payload)

    def finish(self, ctx, voice_on: bool) -> None:
        ctx.resident.voice_on = voice_on
        after = ctx.slots.get("after")
        if after:
            from flows.commands import open_deep_link

            ctx.say(self._welcome(ctx))
            if open_deep_link(ctx, after):
                return
        if after or ctx.resident.building:
            ctx.main_menu(None if after else self._welcome(ctx))
            return
        ctx.say(self._welcome(ctx))
        ctx.go(self.name, "building", slots={})

    @staticmethod
    def _welcome(ctx) -> str:
        t = ctx.t
        return t("Welcome to {community}! You can change the language and voice any time "
                 "under Settings.", community=t.name(ctx.config.community_names))

    def on_text(self, ctx, step, text):
        if step == "building":
            self.building_text(ctx, text)
            return
        language = language_from_text(ctx, text)
        if language:
            self.choose_language(ctx, language)
            return
        ctx.say(ctx.t("Please choose your language by its number."))
        ctx.show()

    def building_text(self, ctx, text: str, spoken: bool = False) -> None:
        """At the building offer: what the NLU reads as something to do ("3号楼的电梯坏了")
        is done, and the offer is not made again; anything else is the building, named by a
        place pattern or kept as typed. A voice note's transcript is taken only when it names
        a building: misheard words are never stored as one."""
        understanding = ctx.understanding
        if understanding is not None and understanding.intent not in NOT_AN_ACTION:
            self.assistant.flow("intents").handle(ctx, understanding, text)
            return
        if spoken and not (find_place(ctx.config, text) or listed_building(ctx.config, text)):
            ctx.go("menu", "main", slots={}, show=False)
            ctx.say(ctx.t("I did not understand that. Please choose one of the numbers below."))
            ctx.show()
            return
        if save_building(ctx, text):
            ctx.main_menu()
        else:
            ctx.show()

    def on_spoken_text(self, ctx, step, text, media):
        if step == "building":
            self.building_text(ctx, text, spoken=True)
            return
        super().on_spoken_text(ctx, step, text, media)

    def on_media(self, ctx, step, kind, media):
        """A photo or a voice note not understood at the building offer: the offer is left
        for the main menu, which answers it."""
        if step == "building":
            ctx.go("menu", "main", slots={}, show=False)
            self.assistant.flow("menu").on_media(ctx, "main", kind, media)
            return
        super().on_media(ctx, step, kind, media)

    def choose_language(self, ctx, language: str) -> None:
        """Sets the language; then the kept first message is acted on, or voice is asked."""
        pending = ctx.slots.get("pending") or {}
        ctx.set_language(language)
        if pending.get("intent") and pending["intent"] not in GREETINGS:
            ctx.say(self._welcome(ctx))
            ctx.go("menu", "main", slots={}, show=False)
            self.assistant.flow("intents").handle_kept(ctx, pending)
            return
        if not voice_offered(ctx.config, language):
            # No engine speaks it and no clip is recorded yet: "read aloud" would be silence.
            self.finish(ctx, voice_on=False)
            return
        ctx.go(self.name, "voice", slots={"after": ctx.slots.get("after")})
