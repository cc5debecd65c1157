"""Slash commands, handled before anything else and never passed to the NLU.

`/start notice_<id>` and `/start poll_<id>` are deep links (Telegram's t.me/<bot>?start=…):
they open that notice or consultation, after the language picker for a newcomer.
"""

from __future__ import annotations

import re

from bot.i18n import N_
from bot.messages import OUTBOX
from bot.services import grids as grid_service
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
    "/volunteer": N_("Volunteer in your grid"),
}
KNOWN = tuple(DESCRIPTIONS)
# For grid workers, not residents: not in the command list residents see.
LINK = "/link"
DEEP_LINK = re.compile(r"^(notice|poll)_(\d{1,9})$")


def open_deep_link(ctx, argument: str) -> bool:
    """Opens what a deep link names; False (after saying so) if it names nothing open."""
    match = DEEP_LINK.match(argument or "")
    if match is None:
        return False
    kind, number = match.group(1), int(match.group(2))
    flows = ctx.assistant.flows
    if kind == "notice":
        if flows["notices"].open(ctx, number):
            return True
        ctx.say(ctx.t("That notice is not available any more."))
        flows["notices"].start(ctx)
        return True
    if flows["polls"].open(ctx, number):
        return True
    ctx.say(ctx.t("That consultation is not available."))
    flows["polls"].start(ctx)
    return True


class Commands:
    name = "commands"

    def __init__(self, assistant):
        self.assistant = assistant

    def run(self, ctx, text: str) -> None:
        t = ctx.t
        command, _, argument = text.partition(" ")
        argument = argument.strip()
        command = command.split("@", 1)[0].lower()  # /start@LinliBot in Telegram
        flows = self.assistant.flows
        if command == LINK:
            self.link(ctx, argument)
            return
        if command not in KNOWN:
            ctx.say(t("I do not know that command. These work: {commands}",
                      commands=" ".join(KNOWN)))
            if ctx.resident.flow is None:
                flows["onboarding"].start(ctx)
            else:
                ctx.show()
            return
        if ctx.resident.language is None and command != "/language":
            after = argument if command == "/start" and DEEP_LINK.match(argument) else None
            flows["onboarding"].start(ctx, after=after)
            return
        if command == "/start" and open_deep_link(ctx, argument):
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
        elif command == "/volunteer":
            flows["volunteers"].start(ctx, offers_first=True)

    def link(self, ctx, code: str) -> None:
        """`/link CODE`: a grid worker links their staff account to this chat with the
        one-time code the console showed; urgent requests of their grid then come here. The
        turn is kept in the log without its text (the code)."""
        if ctx.resident.language is None:  # a worker's first message: their app's language,
            ctx.t = self.assistant.catalogs.translator(_hinted(ctx))  # not the code's digits
        t = ctx.t
        ctx.secret = True
        if not ctx.carries(OUTBOX):
            ctx.say(t("Staff accounts can be linked only in a messenger chat such as Telegram."))
        elif not grid_service.normalise_code(code):
            ctx.say(t("Send /link and the code the console shows, for example: /link 4821 0937"))
        else:
            staff = grid_service.link(ctx.session, ctx.config.data_dir, code, ctx.resident)
            if staff is None:
                ctx.say(t("That code does not work. A code works once, for 10 minutes. Get a "
                          "new one on the console's grid page."))
            else:
                ctx.say(t("This chat is now linked to the staff account {name}. New urgent "
                          "requests of your grid will come here.", name=staff.name))
        if ctx.resident.flow is None:
            self.assistant.flows["onboarding"].start(ctx)
        else:
            ctx.show()


def _hinted(ctx) -> str | None:
    """The language the channel says the person's app uses (Telegram: "zh-hans"), if it is one
    of ours; None gives the default language."""
    hint = (ctx.incoming.language_hint or "").replace("-", "_").lower()
    for language in ctx.config.language_ids:
        if hint and (hint == language.lower() or hint.split("_")[0] == language.split("_")[0]):
            return language
    return None
