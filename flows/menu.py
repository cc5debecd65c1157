"""The main menu: every service one tap or one number away."""

from __future__ import annotations

from bot.i18n import N_
from flows.base import Flow

# (payload, label): later flows add their entries here.
MENU_ENTRIES = [
    ("menu:report", N_("Report a problem")),
    ("menu:requests", N_("My requests")),
    ("menu:notices", N_("Notices")),
    ("menu:polls", N_("Consultations")),
    ("menu:staff", N_("Talk to staff")),
    ("menu:services", N_("Services nearby")),
    ("menu:settings", N_("Settings")),
    ("menu:help", N_("Help")),
]


class MainMenu(Flow):
    name = "menu"

    def prompt(self, ctx, step):
        t = ctx.t
        buttons = [ctx.button(t(label), payload) for payload, label in MENU_ENTRIES]
        ctx.say(t("What would you like to do? Choose a number."), buttons)

    def on_button(self, ctx, step, payload):
        if payload == "menu:report":
            self.assistant.flow("report").start(ctx)
        elif payload == "menu:requests":
            self.assistant.flow("myrequests").start(ctx)
        elif payload == "menu:notices":
            self.assistant.flow("notices").start(ctx)
        elif payload == "menu:polls":
            self.assistant.flow("polls").start(ctx)
        elif payload == "menu:staff":
            self.assistant.flow("handover").start(ctx)
        elif payload == "menu:services":
            self.assistant.flow("services").start(ctx)
        elif payload == "menu:settings":
            self.assistant.flow("settings").start(ctx)
        elif payload == "menu:help":
            show_help(ctx)
        else:
            super().on_button(ctx, step, payload)


def show_help(ctx) -> None:
    """What Linli does, then the numbered menu; the commands come last, for those who type."""
    t = ctx.t
    ctx.say(
        t(
            "I am Linli, the assistant of {community}. I can take a report of a problem "
            "in your building or street, pass it to the right department, and tell you "
            "what happens to it.\n"
            "Answer by pressing a button or typing its number.",
            community=t.name(ctx.config.community_names),
        )
        + "\n"
        + t("You can also read the community's notices, get new ones on the topics you choose, "
            "and vote in community consultations.")
    )
    ctx.main_menu()
    ctx.say(t("Commands: /menu main menu, /myrequests your requests, /language change language, "
              "/voice spoken replies on or off, /cancel stop what you are doing, "
              "/forget delete your data."))
