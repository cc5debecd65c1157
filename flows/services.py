"""Services nearby (the 15-minute life circle): a type, then the nearest few with distance,
whether each is open now or when it opens, phone, address and a map pin."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from babel.dates import format_date, format_time
from babel.numbers import format_decimal

from bot.messages import LOCATION, Venue
from bot.models import utcnow
from bot.places import find_place, home_point, listed_building
from bot.services.directory import NEAREST, Found, find, types_offered
from flows.base import Flow

FLOW = "services"


class Services(Flow):
    name = FLOW
    # Where a building number typed ("5号楼", "building 5") places the resident.
    text_steps = frozenset({"where", "shown"})

    def __init__(self, assistant):
        super().__init__(assistant)
        # The clock opening hours are read with (tests set it to a chosen moment).
        self.now: Callable[[], datetime] = utcnow

    # --- entry points -----------------------------------------------------------------
    def start(self, ctx, service_type: str | None = None) -> None:
        """With a type the directory lists, its nearest services; else the list of types."""
        if service_type in {kind.id for kind in types_offered(ctx.config)}:
            self.choose(ctx, service_type)
        else:
            ctx.go(FLOW, "type", slots={})

    def choose(self, ctx, service_type: str) -> None:
        """Near the resident's building if it is listed, else near a location they share
        (where the channel has a button for it), else all of that type by name."""
        home = home_point(ctx.config, ctx.resident.building)
        if home:
            slots = {"type": service_type, "lat": home[0], "lon": home[1], "from": "home"}
            ctx.go(FLOW, "shown", slots=slots)
        elif ctx.carries(LOCATION):
            ctx.go(FLOW, "where", slots={"type": service_type})
        else:
            ctx.go(FLOW, "shown", slots={"type": service_type})

    # --- steps ------------------------------------------------------------------------
    def prompt(self, ctx, step):
        t = ctx.t
        if step == "where":
            ctx.say(t("Share your location, or type your building number, and I will find "
                      "the nearest. Or see them all by name."),
                    [ctx.button(t("See them by name"), "svc:byname"), self.menu_button(ctx)],
                    request_location=True)
        elif step == "shown" and ctx.slots.get("type"):
            self.answer(ctx)
        else:
            buttons = [ctx.button(t.name(kind.names), f"svc:{kind.id}")
                       for kind in types_offered(ctx.config)]
            ctx.say(t("Which service are you looking for? Choose a number."),
                    buttons + [self.menu_button(ctx)])

    def answer(self, ctx) -> None:
        t, slots = ctx.t, ctx.slots
        try:
            kind = ctx.config.service_type(slots["type"])
        except KeyError:  # config.yml changed since the type was chosen
            ctx.go(FLOW, "type", slots={})
            return
        point = (slots["lat"], slots["lon"]) if "lat" in slots else None
        service = t.name(kind.names)
        if slots.get("from") == "home":
            ctx.say(t("{service}, nearest to your building first:", service=service))
        elif slots.get("from") == "building":
            ctx.say(t("{service}, nearest to {place} first:", service=service,
                      place=slots["place"]))
        elif point:
            ctx.say(t("{service}, nearest to you first:", service=service))
        else:
            ctx.say(t("{service} in our community:", service=service))
        # Near a point, the nearest few; by name, all of them.
        listed = find(ctx.config, kind.id, self.now(), point,
                      limit=NEAREST if point else len(ctx.config.services))
        for found in listed:
            place = found.service
            ctx.say(self.describe(ctx, found))
            ctx.say(f"📍 {t.name(place.names)}",
                    venue=Venue(place.latitude, place.longitude, t.name(place.names),
                                t.name(place.addresses)))
        location = ctx.carries(LOCATION)
        ctx.say(t("Share your location to see what is nearest to where you are now.")
                if location else t("What next? Choose a number, or type your building number "
                                   "to see what is nearest to it."),
                [ctx.button(t("Other services"), "svc:types"), self.menu_button(ctx)],
                request_location=location)

    def describe(self, ctx, found: Found) -> str:
        """Name and distance, then what, when, phone, where, languages. Not numbered: a
        typed number presses the buttons below."""
        t, place = ctx.t, found.service
        title = t.name(place.names)
        if found.distance_m is not None:
            title += f" · {distance(t, found.distance_m)}"
        if found.open_until:
            hours = t("Open now, until {time}.", time=clock(t, found.open_until))
        elif found.next_opening:
            hours = t("Closed now. Opens {day}, {time}.",
                      day=format_date(found.next_opening, "EEEE", locale=t.locale),
                      time=t.datetime(found.next_opening))
        else:
            hours = t("Closed now.")
        spoken = ", ".join(ctx.config.language(lang).native_name for lang in place.languages)
        return "\n".join([
            title,
            t.name(place.descriptions),
            hours,
            t("Phone: {phone}", phone=place.phone),
            t("Address: {address}", address=t.name(place.addresses)),
            t("Languages spoken there: {languages}", languages=spoken),
        ])

    # --- what the resident does -------------------------------------------------------
    def on_button(self, ctx, step, payload):
        offered = {kind.id for kind in types_offered(ctx.config)}
        choice = payload.split(":", 1)[1] if payload.startswith("svc:") else None
        if choice == "byname" and ctx.slots.get("type"):
            ctx.go(FLOW, "shown", slots={"type": ctx.slots["type"]})
        elif choice == "types":
            ctx.go(FLOW, "type", slots={})
        elif choice in offered:
            self.choose(ctx, choice)
        else:
            super().on_button(ctx, step, payload)

    def claims_text(self, ctx, step, text):
        """A listed building typed ("7号楼", "7-р байр"): the services nearest to it."""
        found = listed_building(ctx.config, text)
        if not found or found[1].latitude is None or not ctx.slots.get("type"):
            return False
        building = found[1]
        ctx.go(FLOW, "shown", slots={
            "type": ctx.slots["type"], "lat": building.latitude, "lon": building.longitude,
            "from": "building", "place": find_place(ctx.config, text) or text.strip()})
        return True

    def on_text(self, ctx, step, text):
        """Other words: what they mean, as anywhere else ("药店" finds a pharmacy)."""
        if ctx.understanding is not None:
            self.assistant.flow("intents").handle(ctx, ctx.understanding, text)
        else:
            super().on_text(ctx, step, text)

    def on_location(self, ctx, step, latitude, longitude):
        """A shared location: the chosen type's services nearest to it."""
        service_type = ctx.slots.get("type")
        if not service_type:
            ctx.say(ctx.t("Please choose a service first."))
            ctx.show()
            return
        # Kept (for "repeat") to about 100 m only: where a resident stands is not stored.
        ctx.go(FLOW, "shown", slots={"type": service_type, "lat": round(float(latitude), 3),
                                     "lon": round(float(longitude), 3), "from": "here"})


def distance(t, metres: float) -> str:
    """"40 m", "1.2 km", in the resident's number format."""
    if metres < 1000:
        return t("{metres} m", metres=format_decimal(max(10, round(metres, -1)), locale=t.locale))
    return t("{km} km", km=format_decimal(round(metres / 1000, 1), locale=t.locale))


def clock(t, local: datetime) -> str:
    """A time of day as the resident's locale writes it ("13:30", "1:30 PM")."""
    return format_time(local, "short", locale=t.locale)
