"""Slash commands, handled before anything else and never passed to the NLU."""

from __future__ import annotations

from bot.i18n import N_
from flows.menu import show_help

# What each command does, as the messenger's command list shows it (Telegram: per language).
DESCRIPTIONS = {
    "/start": N_("Start, or choose your language"),
    "/menu": N_("Main menu"),
    "/help": N_("What I can do"),
    "/language": N_("Change language"),
    "/voice": N_("Spoken replies on or off"),
    "/cancel": N_("Stop what you are doing"),
    "/myrequests": N_("My requests"),
    "/forget": N_("Delete my data"),
}
KNOWN = tuple(DESCRIPTIONS)


class Commands:
    name = "commands"

    def __init__(self, assistant):
        self.assistant = assistant

    def run(self, ctx, text: str) -> None:
        t = ctx.t
        command = text.partition(" ")[0]
        command = command.split("@", 1)[0].lower()  # /start@LinliBot in Telegram
        flows = self.assistant.flows
        if command not in KNOWN:
            ctx.say(t("I do not know that command. These work: {commands}",
                      commands=" ".join(KNOWN)))
            if ctx.resident.flow is None:
                flows["onboarding"].start(ctx)
            else:
                ctx.show()
            return
        if ctx.resident.language is None and command != "/language":
            flows["onboarding"].start(ctx)
            return
        if command == "/start" or command == "/menu":
            ctx.main_menu()
        elif command == "/help":
            show_help(ctx)
        elif command == "/language":
            if ctx.resident.language is None:
                flows["onboarding"].start(ctx)
            else:
                flows["settings"].start(ctx, "language")
        elif command == "/voice":
            ctx.resident.voice_on = not ctx.resident.voice_on
            ctx.say(t("Voice replies are on.") if ctx.resident.voice_on
                    else t("Voice replies are off."))
            ctx.show()
        elif command == "/cancel":
            ctx.main_menu(t("Cancelled. Nothing was saved."))
        elif command == "/myrequests":
            flows["myrequests"].start(ctx)
        elif command == "/forget":
            flows["settings"].start(ctx, "forget")
