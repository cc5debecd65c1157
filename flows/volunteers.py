"""Volunteers: sign up (skills, grid, times), see, change or withdraw; answer offered requests.

Steps: main (the sign-up, or an invitation) → skills (toggle ✓) → grid (only when the
resident's building is not a listed one) → times (toggle ✓) → saved at main; main → withdraw
(confirm); offer (an elderly_help request the grid worker offered: accept or decline).
Drawn in flows/volunteers.mmd.
"""

from __future__ import annotations

from bot.config import Config
from bot.i18n import N_, Translator
from bot.messages import OUTBOX, VOICE, Button, Reply, reply_to_stored, voice_payload
from bot.models import Request, Resident, VolunteerOffer
from bot.places import listed_building, nearest_building
from bot.services import volunteers as service
from flows.base import Flow

CHECK = "✓"
ACCEPTED_NOTE = N_("A volunteer has agreed to help.")  # the request's history, requester's language
# Where a volunteer is not in the middle of anything: an offer may take over the step there.
IDLE_STEPS = frozenset({(None, None), ("menu", "main"), ("volunteers", "main"),
                        ("volunteers", "offer")})


def skill_name(t: Translator, skill: str) -> str:
    return t(dict(service.SKILLS).get(skill, skill))


def time_name(t: Translator, time: str) -> str:
    return t(dict(service.TIMES).get(time, time))


def request_building(config: Config, request: Request) -> str | None:
    """The listed building a request's place is in: its number only, never the address."""
    found = listed_building(config, request.location_text)
    if found:
        return found[1].key
    if request.latitude is not None and request.longitude is not None:
        near = nearest_building(config, request.latitude, request.longitude)
        if near:
            return near[1].key
    return None


def offer_text(t: Translator, config: Config, request: Request) -> str:
    """What a volunteer is told of a request: its category and building (or grid), nothing
    the requester wrote or is (no name, phone, address or description)."""
    try:
        category = t.name(config.category(request.category_id).names)
    except KeyError:
        category = request.category_id
    building = request_building(config, request)
    if building is not None:
        where = t("Building {number}", number=building)
    else:
        try:
            where = t.name(config.grid(request.grid_id).names)
        except KeyError:
            where = ""
    return "\n".join([
        t("A neighbour in your grid needs help: {category}.", category=category),
        t("Where: {place}", place=where),
        t("If you take it on, the grid worker will give you the details."),
    ])


def offered_note(t: Translator, count: int) -> str:
    """The line the request's history gets (the requester reads it in their language)."""
    return t.ngettext("Offered to {count} volunteer of the grid.",
                      "Offered to {count} volunteers of the grid.", count)


def offer_buttons(t: Translator, offer: VolunteerOffer) -> list[Button]:
    return [Button(t("Accept"), f"vol:accept:{offer.id}"),
            Button(t("Decline"), f"vol:decline:{offer.id}"),
            Button(t("Main menu"), "menu")]


def offer_payloads(t: Translator, config: Config, resident: Resident, request: Request,
                   offer: VolunteerOffer, carries: frozenset[str]) -> list[dict]:
    """The message a volunteer gets when the grid worker offers them a request; `carries`:
    what their channel carries (bot.channels.base.ChannelRegistry).

    Sent at once (a channel with the outbox) to a volunteer at the main menu or in this flow,
    it moves them to the offer's step: its buttons are the latest in their chat and "1"
    accepts. Anyone else keeps their step, and what their numbers mean, and is told to answer
    with /volunteer: one in the middle of a report, or on a channel that shows the message only
    after their next message (a "1" typed for the menu must not accept an unseen offer).
    """
    text = offer_text(t, config, request)
    buttons: list[Button] = []
    if OUTBOX in carries and (resident.flow, resident.step) in IDLE_STEPS:
        buttons = offer_buttons(t, offer)
        text += "\n" + t("Choose 1 to accept or 2 to decline.")
        resident.flow, resident.step, resident.slots = "volunteers", "offer", {"offer": offer.id}
        resident.offered = [button.payload for button in buttons]
    else:
        text += "\n" + t("When you are ready, send /volunteer to answer.")
    reply = Reply(text=text, buttons=buttons, rtl=t.rtl, language=t.language)
    payloads = [reply_to_stored(reply, senior=bool(resident.senior_mode))]
    if resident.voice_on and VOICE in carries:  # read aloud, as every reply is
        payloads.append(voice_payload(t, resident, [reply]))
    return payloads


class Volunteers(Flow):
    name = "volunteers"

    def start(self, ctx, offers_first: bool = False) -> None:
        """The sign-up (settings); with `offers_first` (/volunteer, as an offer tells a busy
        volunteer to send), the first offer waiting for an answer if there is one."""
        offers = service.open_offers(ctx.session, ctx.resident) if offers_first else []
        if offers:
            ctx.go(self.name, "offer", slots={"offer": offers[0].id})
        else:
            ctx.go(self.name, "main", slots={})

    # --- prompts ------------------------------------------------------------------------
    def prompt(self, ctx, step):
        {"skills": self._skills, "grid": self._grid, "times": self._times,
         "withdraw": self._withdraw, "offer": self._offer}.get(step, self._main)(ctx)

    def _summary(self, ctx, grid_id: str, skills: list[str], times: list[str]) -> str:
        t = ctx.t
        try:
            grid = t.name(ctx.config.grid(grid_id).names)
        except KeyError:
            grid = t("not set")
        return "\n".join([
            t("Grid: {grid}", grid=grid),
            t("What you can do: {skills}",
              skills=", ".join(skill_name(t, s) for s in skills) or t("not set")),
            t("When: {times}", times=", ".join(time_name(t, x) for x in times) or t("not set")),
        ])

    def _main(self, ctx) -> None:
        t = ctx.t
        volunteer = service.active(ctx.session, ctx.resident)
        if volunteer is None:
            ctx.say(t("Volunteers help older neighbours in their grid: shopping, going to "
                      "hospital, a visit. The grid worker asks you when someone needs help, "
                      "and you can say no."),
                    [ctx.button(t("Sign up as a volunteer"), "vol:signup"), self.menu_button(ctx)])
            return
        buttons = []
        offers = service.open_offers(ctx.session, ctx.resident)
        if offers:
            buttons.append(ctx.button(t("Requests waiting for your answer: {count}",
                                        count=len(offers)), "vol:offers"))
        buttons += [ctx.button(t("Change what I can do"), "vol:skills"),
                    ctx.button(t("Change my grid"), "vol:grid"),
                    ctx.button(t("Change when I can help"), "vol:times"),
                    ctx.button(t("Stop being a volunteer"), "vol:withdraw"),
                    self.menu_button(ctx)]
        ctx.say(t("You are a volunteer. Thank you!") + "\n"
                + self._summary(ctx, volunteer.grid_id, volunteer.skills, volunteer.times),
                buttons)

    def _toggles(self, ctx, options, chosen: list[str], prefix: str, label) -> list[Button]:
        return [ctx.button(f"{CHECK} {label(ctx.t, key)}" if key in chosen else label(ctx.t, key),
                           f"{prefix}:{key}") for key, _ in options]

    def _skills(self, ctx) -> None:
        t = ctx.t
        chosen = ctx.slots.get("skills", [])
        ctx.say(t("What can you help with? Choose a number to mark it ✓ or unmark it, "
                  "then choose “Done”."),
                self._toggles(ctx, service.SKILLS, chosen, "skill", skill_name)
                + [ctx.button(t("Done"), "vol:done"), self.cancel_button(ctx)])

    def _times(self, ctx) -> None:
        t = ctx.t
        chosen = ctx.slots.get("times", [])
        ctx.say(t("When can you help? Choose a number to mark it ✓ or unmark it, "
                  "then choose “Done”."),
                self._toggles(ctx, service.TIMES, chosen, "time", time_name)
                + [ctx.button(t("Done"), "vol:done"), self.cancel_button(ctx)])

    def _grid(self, ctx) -> None:
        t = ctx.t
        ctx.say(t("Which grid do you live in? You will be asked to help there."),
                [ctx.button(t.name(grid.names), f"grid:{grid.id}") for grid in ctx.config.grids]
                + [self.cancel_button(ctx)])

    def _withdraw(self, ctx) -> None:
        t = ctx.t
        ctx.say(t("Stop being a volunteer? You will not be asked to help any more. "
                  "You can sign up again at any time."),
                [ctx.button(t("No, stay a volunteer"), "vol:stay"),
                 ctx.button(t("Yes, stop"), "vol:stop")])

    def _offer(self, ctx) -> None:
        row = service.offer_of(ctx.session, ctx.resident, int(ctx.slots.get("offer") or 0))
        if row is None or row.status != "offered":
            ctx.go(self.name, "main", slots={})
            return
        request = ctx.session.get(Request, row.request_id)
        ctx.say(offer_text(ctx.t, ctx.config, request) + "\n"
                + ctx.t("Choose 1 to accept or 2 to decline."),
                [ctx.button(b.label, b.payload) for b in offer_buttons(ctx.t, row)])

    # --- answers ------------------------------------------------------------------------
    def yes_no(self, ctx, step):
        if step == "withdraw":
            return "vol:stop", "vol:stay"
        if step == "offer":
            offer = int(ctx.slots.get("offer") or 0)
            return f"vol:accept:{offer}", f"vol:decline:{offer}"
        return None

    def on_button(self, ctx, step, payload):
        t = ctx.t
        slots = ctx.slots
        if payload == "cancel" and step in ("skills", "grid", "times"):
            ctx.say(t("Nothing was changed."))
            ctx.go(self.name, "main", slots={})
        elif step == "main" and payload == "vol:signup":
            found = listed_building(ctx.config, ctx.resident.building)
            ctx.go(self.name, "skills", slots={
                "signup": True, "skills": [], "times": [],
                "grid": found[0].id if found else None})
        elif step == "main" and payload in ("vol:skills", "vol:times", "vol:grid"):
            volunteer = service.active(ctx.session, ctx.resident)
            if volunteer is None:
                ctx.go(self.name, "main", slots={})
                return
            ctx.go(self.name, payload.split(":")[1], slots={
                "skills": list(volunteer.skills), "times": list(volunteer.times),
                "grid": volunteer.grid_id})
        elif step == "main" and payload == "vol:offers":
            self.start(ctx, offers_first=True)
        elif step == "main" and payload == "vol:withdraw":
            ctx.go(self.name, "withdraw")
        elif step == "withdraw" and payload == "vol:stop":
            service.withdraw(ctx.session, ctx.resident)
            ctx.main_menu(t("You are no longer a volunteer. Thank you for your help."))
        elif step == "withdraw" and payload == "vol:stay":
            ctx.go(self.name, "main")
        elif step == "skills" and payload.startswith("skill:"):
            ctx.set_slots(skills=self._toggled(slots.get("skills", []), payload,
                                               service.SKILL_IDS))
            ctx.show()
        elif step == "times" and payload.startswith("time:"):
            ctx.set_slots(times=self._toggled(slots.get("times", []), payload,
                                              service.TIME_IDS))
            ctx.show()
        elif step == "grid" and payload.startswith("grid:"):
            grid_id = payload.split(":", 1)[1]
            if grid_id not in {grid.id for grid in ctx.config.grids}:
                ctx.show()
                return
            ctx.set_slots(grid=grid_id)
            self._next(ctx, "grid")
        elif step in ("skills", "times") and payload == "vol:done":
            if not slots.get(step):
                ctx.say(t("Please mark at least one with its number first."))
                ctx.show()
                return
            self._next(ctx, step)
        elif step == "offer" and payload.startswith(("vol:accept:", "vol:decline:")):
            self._answer(ctx, payload)
        else:
            super().on_button(ctx, step, payload)

    @staticmethod
    def _toggled(chosen: list[str], payload: str, known: tuple[str, ...]) -> list[str]:
        key = payload.split(":", 1)[1]
        if key not in known:
            return chosen
        return [k for k in chosen if k != key] if key in chosen else [*chosen, key]

    def _next(self, ctx, done: str) -> None:
        """After a step: the sign-up goes on (skills → grid if unknown → times); a change
        is saved at once."""
        slots = ctx.slots
        if slots.get("signup") and done == "skills":
            ctx.go(self.name, "grid" if not slots.get("grid") else "times")
            return
        if slots.get("signup") and done == "grid":
            ctx.go(self.name, "times")
            return
        signup = bool(slots.get("signup"))
        service.sign_up(ctx.session, ctx.config, ctx.resident, slots["grid"], slots["skills"],
                        slots["times"])
        ctx.say(ctx.t("Thank you for signing up as a volunteer! The grid worker will ask you "
                      "when a neighbour needs help.") if signup else ctx.t("Saved."))
        ctx.go(self.name, "main", slots={})

    def _answer(self, ctx, payload: str) -> None:
        t = ctx.t
        _, verb, number = payload.split(":")
        offer_id = int(number) if number.isdigit() else 0
        outcome = service.answer(ctx.session, ctx.resident, offer_id, verb == "accept")
        if outcome == "accepted":
            request = ctx.session.get(Request, service.offer_of(
                ctx.session, ctx.resident, offer_id).request_id)
            note = ctx.assistant.catalogs.translator(request.language)(ACCEPTED_NOTE)
            service.record(ctx.session, request, "volunteer", note)
            said = t("Thank you! You have taken this on. The grid worker will contact you "
                     "with the details.")
        else:
            said = {
                "declined": t("All right. Thank you for answering."),
                "taken": t("Thank you, but another volunteer has already taken this on."),
                "closed": t("Thank you, but this request does not need help any more."),
                "answered": t("You have already answered this request."),
            }.get(outcome, t("That request is not offered to you."))
        ctx.say(said)
        following = service.open_offers(ctx.session, ctx.resident)
        if following:
            ctx.go(self.name, "offer", slots={"offer": following[0].id})
        else:
            ctx.main_menu()
