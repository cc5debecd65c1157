"""What free text does once the NLU has named its intent: start, switch or answer within a flow."""

from __future__ import annotations

from bot.i18n import N_
from bot.messages import NLU_UNAVAILABLE, Understanding
from bot.services import polls as poll_service
from bot.services import requests as request_service
from bot.text import word_count
from flows.menu import show_help

# How each intent is offered as a "Did you mean…" button.
INTENT_LABELS = {
    "greet": N_("Say hello"),
    "goodbye": N_("Say goodbye"),
    "thank": N_("Say thank you"),
    "help": N_("Help"),
    "affirm": N_("Yes"),
    "deny": N_("No"),
    "cancel": N_("Cancel"),
    "repeat": N_("Show that again"),
    "main_menu": N_("Main menu"),
    "report_problem": N_("Report a problem"),
    "check_request_status": N_("My requests"),
    "rate_service": N_("Rate a request"),
    "read_notices": N_("Read notices"),
    "subscribe_notices": N_("Get new notices"),
    "unsubscribe_notices": N_("Stop notices"),
    "join_poll": N_("Community consultations"),
    "change_language": N_("Change language"),
    "voice_on": N_("Turn voice replies on"),
    "voice_off": N_("Turn voice replies off"),
    "talk_to_human": N_("Talk to staff"),
    "emergency": N_("Emergency numbers"),
    "delete_my_data": N_("Delete my data"),
    "find_service": N_("Services nearby"),
}
# Intents that may interrupt a step waiting for typed text (a description, a place), when the
# model is sure and the message is short: anything else typed there is the answer itself.
INTERRUPTING = frozenset({"cancel", "main_menu", "emergency"})
INTERRUPT_CONFIDENCE = 0.8
INTERRUPT_MAX_LENGTH = 30
# Intents whose action cannot be undone (erasing data, stopping notices): acted on from free
# text only when the model is at least this sure; below it they are only offered as guesses.
IRREVERSIBLE = frozenset({"delete_my_data", "unsubscribe_notices"})
IRREVERSIBLE_CONFIDENCE = 0.9


def entity(understanding: Understanding, name: str) -> str | None:
    for item in understanding.entities:
        if item["entity"] == name:
            return item["value"]
    return None


def carries_problem(understanding: Understanding, text: str) -> bool:
    """Does a message the model is unsure of name a problem: a category word among other
    words, or reporting as the model's next guess?"""
    if entity(understanding, "category") and word_count(text) >= 2:
        return True
    guesses = [name for name, _ in understanding.ranking[:2]]
    return "report_problem" in guesses


def names_a_service(understanding: Understanding) -> bool:
    """Does a message the model is unsure of name a service type, with finding a service as
    the model's best guess?"""
    best = understanding.ranking[0][0] if understanding.ranking else None
    return best == "find_service" and entity(understanding, "service_type") is not None


class Intents:
    name = "intents"

    def __init__(self, assistant):
        self.assistant = assistant

    # --- entry points -----------------------------------------------------------------
    def interrupts(self, understanding: Understanding, text: str) -> bool:
        """At a step that takes typed text: does this message rather mean to leave it?"""
        return (
            understanding.intent in INTERRUPTING
            and understanding.confidence >= INTERRUPT_CONFIDENCE
            and len(text) <= INTERRUPT_MAX_LENGTH
        )

    def handle(self, ctx, understanding: Understanding, text: str) -> None:
        """Free text where the step wanted a choice (or an interrupting message)."""
        intent = understanding.intent
        if intent == NLU_UNAVAILABLE:  # as without a model (Assistant.understand)
            ctx.say(ctx.t("I did not understand that. Please choose one of the numbers below."))
            ctx.show()
            return
        tracking_number = entity(understanding, "request_id")
        if tracking_number and intent not in ("rate_service", "emergency"):
            intent = "check_request_status"  # a tracking number of one's own opens it
        if intent == "nlu_fallback" and names_a_service(understanding):
            intent = "find_service"  # "老人飯堂開門沒": not a report because 老人 is in it
        if intent in IRREVERSIBLE | {"nlu_fallback"} and carries_problem(understanding, text):
            intent = "report_problem"  # "no water in my house" is a report, never an erasure
        if intent in IRREVERSIBLE and understanding.confidence < IRREVERSIBLE_CONFIDENCE:
            intent = "nlu_fallback"
        if intent == "nlu_fallback":
            self.did_you_mean(ctx, understanding)
            return
        self.run(ctx, intent, understanding, text)

    def handle_kept(self, ctx, kept: dict) -> None:
        """A message understood earlier and kept in the slots (a newcomer's first words)."""
        understanding = Understanding(
            kept["intent"], float(kept.get("confidence") or 0.0),
            list(kept.get("entities") or []),
            [(name, float(score)) for name, score in kept.get("ranking") or []])
        self.handle(ctx, understanding, kept["text"])

    def on_button(self, ctx, payload: str) -> None:
        """A "Did you mean…" button: the intent it names, without entities."""
        intent = payload.split(":", 1)[1]
        self.run(ctx, intent, Understanding(intent, 1.0), "")

    # --- the intents ------------------------------------------------------------------
    def run(self, ctx, intent: str, understanding: Understanding, text: str) -> None:
        t = ctx.t
        flows = self.assistant.flows
        flow = flows.get(ctx.resident.flow or "menu")
        step = ctx.resident.step

        if intent == "emergency":
            self.assistant.emergency(ctx)
            ctx.show()
            return
        if intent in ("affirm", "deny"):
            choice = flow.yes_no(ctx, step)
            if choice:
                flow.on_button(ctx, step, choice[0] if intent == "affirm" else choice[1])
            else:
                ctx.say(t("All right."))
                ctx.show()
            return
        category = entity(understanding, "category")
        if ctx.resident.flow == "report" and step == "category" and category:
            flow.on_button(ctx, step, f"cat:{category}")
            return

        if intent == "greet":
            ctx.main_menu(t("Hello! How can I help you?"))
        elif intent == "goodbye":
            ctx.main_menu(t("Goodbye! Write to me any time you need help."))
        elif intent == "thank":
            ctx.main_menu(t("You are welcome."))
        elif intent == "help":
            show_help(ctx)
        elif intent == "cancel":
            ctx.main_menu(t("Cancelled. Nothing was saved."))
        elif intent == "repeat":
            ctx.show()
        elif intent == "main_menu":
            ctx.main_menu()
        elif intent == "report_problem":
            self.report(ctx, category, text)
        elif intent == "check_request_status":
            self.check_status(ctx, entity(understanding, "request_id"))
        elif intent == "rate_service":
            self.rate(ctx, entity(understanding, "request_id"))
        elif intent == "read_notices":
            self.read_notices(ctx, entity(understanding, "topic"))
        elif intent in ("subscribe_notices", "unsubscribe_notices"):
            self.subscription(ctx, entity(understanding, "topic"), intent == "subscribe_notices")
        elif intent == "join_poll":
            self.join_poll(ctx)
        elif intent == "change_language":
            language = entity(understanding, "language")
            if language in ctx.config.language_ids:
                flows["settings"].change_language(ctx, language)
            else:
                flows["settings"].start(ctx, "language")
        elif intent in ("voice_on", "voice_off"):
            ctx.resident.voice_on = intent == "voice_on"
            ctx.say(t("Voice replies are on.") if ctx.resident.voice_on
                    else t("Voice replies are off."))
            ctx.show()
        elif intent == "talk_to_human":
            flows["handover"].start(ctx)
        elif intent == "delete_my_data":
            flows["settings"].start(ctx, "forget")
        elif intent == "find_service":
            flows["services"].start(ctx, entity(understanding, "service_type"))
        else:  # out_of_scope, and anything the model may add later
            ctx.main_menu(t("Sorry, I cannot help with that. This is what I can do:"))

    def report(self, ctx, category: str | None, text: str) -> None:
        """A problem in free text: the message is its description unless it is only a word
        or two naming the category, and a place it names is offered for the location."""
        described = text if word_count(text) >= 2 else None
        self.assistant.flows["report"].start(ctx, category, description=described)

    def check_status(self, ctx, tracking_number: str | None) -> None:
        mine = self.assistant.flows["myrequests"]
        if tracking_number and mine.open(ctx, tracking_number):
            return
        if tracking_number:
            ctx.say(ctx.t("You have no request with the number {tracking_number}.",
                          tracking_number=tracking_number))
        mine.start(ctx)

    def rate(self, ctx, tracking_number: str | None) -> None:
        if tracking_number:
            request = request_service.find_for_resident(ctx.session, ctx.resident, tracking_number)
            if request is not None and request.status == "resolved":
                self.assistant.flows["rating"].start(ctx, request.tracking_number)
                return
            if request is not None:
                ctx.say(ctx.t("Request {tracking_number} can be rated once it is resolved.",
                              tracking_number=request.tracking_number))
                self.assistant.flows["myrequests"].open(ctx, request.tracking_number)
                return
        self.check_status(ctx, tracking_number)

    def read_notices(self, ctx, topic: str | None) -> None:
        notices = self.assistant.flows["notices"]
        if not (topic and notices.open_topic(ctx, topic)):
            notices.start(ctx)

    def subscription(self, ctx, topic: str | None, on: bool) -> None:
        """With a topic, (un)subscribe at once; without one, the list of topics to choose."""
        notices = self.assistant.flows["notices"]
        if topic in {t.id for t in ctx.config.notice_topics}:
            notices.set_subscription(ctx, topic, on)
        notices.start(ctx, "subs")

    def join_poll(self, ctx) -> None:
        polls = self.assistant.flows["polls"]
        open_now = poll_service.open_polls(ctx.session, ctx.resident)
        if len(open_now) == 1:
            polls.open(ctx, open_now[0].id)
        else:
            polls.start(ctx)

    def did_you_mean(self, ctx, understanding: Understanding) -> None:
        t = ctx.t
        guesses = [name for name, _ in understanding.ranking if name in INTENT_LABELS][:2]
        # An action that cannot be undone is never choice 1, the number a senior presses first.
        guesses.sort(key=lambda name: name in IRREVERSIBLE)
        if not guesses:
            ctx.main_menu(t("I did not understand that. Please choose one of the numbers below."))
            return
        buttons = [ctx.button(t(INTENT_LABELS[name]), f"intent:{name}") for name in guesses]
        ctx.say(t("I am not sure what you mean. Did you mean one of these?"),
                buttons + [ctx.button(t("Main menu"), "menu")])
