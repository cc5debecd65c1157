"""Report a problem: category → description → location → photo → confirm → tracking number.

The description may be a voice note, kept as audio for staff. The photo step is offered only on
channels that carry photos (Telegram, the web chat); a photo sent at any step of the report is attached too.
The draft lives in the resident's slots; a request row exists only once the resident confirms.
"""

from __future__ import annotations

import dataclasses

from bot.messages import PHOTO, VOICE
from bot.places import find_place, grid_for
from bot.services import grids as grid_service
from bot.services import requests as service
from flows.base import Flow

MIN_TEXT = 2
MAX_PHOTOS = 5


class ReportProblem(Flow):
    name = "report"
    text_steps = frozenset({"description", "location"})

    def start(self, ctx, category: str | None = None, description: str | None = None) -> None:
        """A new report; a `description` (the resident's own message) skips that step, and a
        place named in it is offered at the location step."""
        slots: dict = {}
        if description:
            slots.update(description=description, place_found=find_place(ctx.config, description))
        if category and self._category_ok(ctx, category):
            slots["category"] = category
            ctx.go(self.name, "location" if description else "description", slots=slots)
        else:
            ctx.go(self.name, "category", slots=slots)

    @staticmethod
    def _category_ok(ctx, category_id: str) -> bool:
        return category_id in {c.id for c in ctx.config.categories}

    def _category_name(self, ctx, category_id: str) -> str:
        return ctx.t.name(ctx.config.category(category_id).names)

    def prompt(self, ctx, step):
        t = ctx.t
        slots = ctx.slots
        if step == "category":
            buttons = [
                ctx.button(t.name(c.names), f"cat:{c.id}") for c in ctx.config.categories
            ]
            ctx.say(t("What is the problem about?"), buttons + [self.cancel_button(ctx)])
        elif step == "description":
            text = t(
                "{category}: please describe the problem in a sentence or two. "
                "For example: the light on the 3rd floor of building 5 is broken.",
                category=self._category_name(ctx, slots["category"]),
            )
            common = ctx.config.category(slots["category"]).common_problems
            if common:
                text += "\n" + t("Or choose a common problem by its number.")
            if ctx.carries(VOICE):
                text += "\n" + t("You can also send a voice note.")
            buttons = [ctx.button(t.name(names), f"desc:{i}") for i, names in enumerate(common)]
            ctx.say(text, buttons + [ctx.button(t("Describe it yourself"), "desc:own"),
                                     self.cancel_button(ctx)])
        elif step == "location":
            buttons = []
            found = slots.get("place_found")
            if found:
                buttons += [ctx.button(t("Yes, there"), "loc:found"),
                            ctx.button(t("No, another place"), "loc:other")]
            if ctx.resident.address:
                buttons.append(
                    ctx.button(t("My address: {address}", address=ctx.resident.address), "loc:home")
                )
            question = (t("Is the problem at {place}? Choose 1 if it is.", place=found) if found
                        else t("Where is the problem? Type the place, for example: "
                               "building 3, entrance 2, 5th floor."))
            ctx.say(question, buttons + [self.cancel_button(ctx)], request_location=True)
        elif step == "photo":
            ctx.say(
                t("If you like, send a photo of the problem now. Otherwise choose “No photo”."),
                [ctx.button(t("No photo"), "photo:skip"), self.cancel_button(ctx)],
            )
        elif step == "confirm":
            place = slots.get("location_text") or t(
                "shared location ({latitude}, {longitude})",
                latitude=f"{slots.get('latitude', 0):.5f}",
                longitude=f"{slots.get('longitude', 0):.5f}",
            )
            ctx.say(
                t(
                    "Please check your request:\nCategory: {category}\nProblem: {description}\n"
                    "Place: {place}",
                    category=self._category_name(ctx, slots["category"]),
                    description=self._description(ctx, slots),
                    place=place,
                )
                + self._photos_line(ctx, slots),
                [
                    ctx.button(t("Submit"), "confirm:submit"),
                    ctx.button(t("Start again"), "confirm:restart"),
                    self.cancel_button(ctx),
                ],
            )

    @staticmethod
    def _description(ctx, slots) -> str:
        voice = next((a for a in slots.get("attachments", []) if a["kind"] == "voice"), None)
        if voice is None or slots.get("description"):  # typed, or a voice note understood
            return slots["description"]
        return ctx.t("a voice note of {seconds} seconds", seconds=round(voice.get("duration") or 0))

    @staticmethod
    def _photos_line(ctx, slots) -> str:
        photos = sum(1 for a in slots.get("attachments", []) if a["kind"] == "photo")
        return "\n" + ctx.t("Photos: {count}", count=photos) if photos else ""

    def _after_location(self, ctx) -> None:
        has_photo = any(a["kind"] == "photo" for a in ctx.slots.get("attachments", []))
        if ctx.carries(PHOTO) and not has_photo:
            ctx.go(self.name, "photo")
        else:
            ctx.go(self.name, "confirm")

    def on_spoken_text(self, ctx, step, text, media):
        """A transcribed voice note at the description step is the description; the audio
        goes with the report for staff."""
        if step == "description":
            attachments = [a for a in ctx.slots.get("attachments", []) if a["kind"] != "voice"]
            ctx.set_slots(attachments=attachments + [media])
        self.on_text(ctx, step, text)

    def on_media(self, ctx, step, kind, media):
        t = ctx.t
        attachments = list(ctx.slots.get("attachments", []))
        if kind == "voice" and step == "description":
            attachments = [a for a in attachments if a["kind"] != "voice"] + [media]
            ctx.set_slots(attachments=attachments, description="")
            ctx.go(self.name, "location")
            return
        if kind == "photo" and step in ("description", "location", "photo", "confirm"):
            if sum(1 for a in attachments if a["kind"] == "photo") >= MAX_PHOTOS:
                ctx.say(t("A report can carry at most {count} photos.", count=MAX_PHOTOS))
                ctx.show()
                return
            ctx.set_slots(attachments=attachments + [media])
            if step == "photo":
                ctx.go(self.name, "confirm")
            else:
                ctx.say(t("The photo is added to your report."))
                ctx.show()
            return
        super().on_media(ctx, step, kind, media)

    def yes_no(self, ctx, step):
        if step == "location" and ctx.slots.get("place_found"):
            return ("loc:found", "loc:other")
        return ("confirm:submit", "cancel") if step == "confirm" else None

    def on_button(self, ctx, step, payload):
        if step == "category" and payload.startswith("cat:"):
            category = payload.split(":", 1)[1]
            if self._category_ok(ctx, category):
                ctx.set_slots(category=category)
                ctx.go(self.name, "location" if ctx.slots.get("description") else "description")
                return
        if step == "description" and payload.startswith("desc:"):
            self._describe_by_choice(ctx, payload.split(":", 1)[1])
            return
        if step == "location" and payload == "loc:found" and ctx.slots.get("place_found"):
            ctx.set_slots(location_text=ctx.slots["place_found"], latitude=None, longitude=None)
            self._after_location(ctx)
            return
        if step == "location" and payload == "loc:other":
            ctx.set_slots(place_found=None)
            ctx.show()
            return
        if step == "location" and payload == "loc:home" and ctx.resident.address:
            ctx.set_slots(location_text=ctx.resident.address, latitude=None, longitude=None)
            self._after_location(ctx)
            return
        if step == "photo" and payload == "photo:skip":
            ctx.go(self.name, "confirm")
            return
        if step == "confirm" and payload == "confirm:submit":
            self.submit(ctx)
            return
        if step == "confirm" and payload == "confirm:restart":
            ctx.go(self.name, "category", slots={})
            return
        super().on_button(ctx, step, payload)

    def on_text(self, ctx, step, text):
        t = ctx.t
        if step == "description":
            if len(text) < MIN_TEXT or not any(ch.isalpha() for ch in text):
                ctx.say(t("Please write a little more, so that staff understand the problem."))
                ctx.show()
                return
            ctx.set_slots(description=text, place_found=find_place(ctx.config, text))
            ctx.go(self.name, "location")
        elif step == "location":
            if len(text) < MIN_TEXT or len(text) > service.MAX_LOCATION:
                ctx.say(
                    t(
                        "Please type the place in {low} to {high} characters.",
                        low=MIN_TEXT,
                        high=service.MAX_LOCATION,
                    )
                )
                ctx.show()
                return
            ctx.set_slots(location_text=text, latitude=None, longitude=None)
            self._after_location(ctx)
        else:
            super().on_text(ctx, step, text)

    def _describe_by_choice(self, ctx, choice: str) -> None:
        """A common problem pressed by its number describes the problem; "describe it
        yourself" asks for the words."""
        common = ctx.config.category(ctx.slots["category"]).common_problems
        if choice.isdigit() and int(choice) < len(common):
            ctx.set_slots(description=ctx.t.name(common[int(choice)]))
            ctx.go(self.name, "location")
            return
        t = ctx.t
        text = t("Please type the problem in a sentence or two.")
        if ctx.carries(VOICE):
            text += "\n" + t("You can also send a voice note.")
        ctx.say(text, [self.cancel_button(ctx)])

    def on_location(self, ctx, step, latitude, longitude):
        valid = (
            isinstance(latitude, (int, float))
            and isinstance(longitude, (int, float))
            and -90 <= latitude <= 90
            and -180 <= longitude <= 180
        )
        if step == "location" and valid:
            ctx.set_slots(location_text=None, latitude=float(latitude), longitude=float(longitude))
            self._after_location(ctx)
            return
        super().on_location(ctx, step, latitude, longitude)

    def submit(self, ctx) -> None:
        t = ctx.t
        slots = ctx.slots
        draft = service.Draft(
            category_id=slots["category"],
            description=slots["description"],
            location_text=slots.get("location_text"),
            latitude=slots.get("latitude"),
            longitude=slots.get("longitude"),
            attachments=tuple(slots.get("attachments", [])),
        )
        grid = grid_for(ctx.config, place=draft.location_text, latitude=draft.latitude,
                        longitude=draft.longitude, home=ctx.resident.building)
        draft = dataclasses.replace(draft, grid_id=grid.id if grid else None)
        request = service.submit(ctx.session, ctx.resident, draft, ctx.incoming.channel)
        grid_service.announce_urgent(ctx.session, ctx.config, self.assistant.catalogs, request)
        department = ctx.config.department(request.department_id)
        ctx.main_menu(
            t(
                "Thank you. Your request has been sent to {department}.\n"
                "Tracking number: {tracking_number}\n"
                "It should be handled by {deadline}.",
                department=t.name(department.names),
                tracking_number=request.tracking_number,
                deadline=t.datetime(request.due_at),
            )
        )
