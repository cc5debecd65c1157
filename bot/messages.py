"""What residents send and are shown, the same on every channel, and the one stored form of a Reply.

The lowest layer of Linli's own modules: channels, the core, flows, NLU and the outbox import
these types; this module imports none of them (as Rasa's `UserMessage` sits under its agent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from bot.i18n import Translator
    from bot.models import Resident

IncomingKind = Literal["text", "button", "location", "photo", "voice", "unsupported", "resume",
                       "push"]

# What a channel can carry beyond text and numbered choices (see bot/channels/base.py). A flow
# asks the turn's context (`ctx.carries(PHOTO)`), never a list of channel names.
Capability = Literal["photo", "voice", "location", "reply_keyboard", "outbox"]
PHOTO: Capability = "photo"  # residents can send photos
VOICE: Capability = "voice"  # voice notes both ways: sent by residents, played from the outbox
LOCATION: Capability = "location"  # a "share my location" button
REPLY_KEYBOARD: Capability = "reply_keyboard"  # buttons as a keyboard that sends their label
OUTBOX: Capability = "outbox"  # replies are queued in the outbox and sent by the channel's
#                                transport (bot/delivery.py), not shown by the caller at once


@dataclass(frozen=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True)
class Venue:
    """A place on the map: Telegram sends it as a pin (sendVenue), the web chat as a map link,
    the terminal as a line with that link."""

    latitude: float
    longitude: float
    title: str
    address: str

    @property
    def map_url(self) -> str:
        """The place on OpenStreetMap (no account, no key, reachable from mainland China)."""
        lat, lon = f"{self.latitude:.5f}", f"{self.longitude:.5f}"
        return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=18/{lat}/{lon}"


@dataclass
class Reply:
    """Something the resident is shown. Channels decide how to render it."""

    text: str
    buttons: list[Button] = field(default_factory=list)
    request_location: bool = False
    rtl: bool = False
    language: str = ""
    source: str | None = None  # the msgid, when the text is one fixed message (voice clips)
    secret: bool = False  # a ballot's choice or receipt: not logged, not spoken, not kept
    # The same text for everyone who gets it (a notice, a poll's results): its audio may be
    # cached. A fixed message (`source`) is shared too; anything else may quote the resident.
    shared: bool = False
    # A map pin: the reply is the place itself (its text names it for channels without pins),
    # and is not read aloud (the reply before it describes the place in words).
    venue: Venue | None = None


@dataclass
class Incoming:
    """One thing a resident did, as a channel saw it.

    kind: "text" (typed text, commands included), "button" (payload of a pressed button),
    "location" (latitude/longitude), "photo" or "voice" (`media` describes the stored file),
    "unsupported" (a sticker, video, edited message…: `media` has its "type"), "resume" (the
    channel reconnected and wants the current step shown again) or "push" (nothing from the
    resident: the channel asks for news, such as status changes, to be delivered now).
    """

    channel: str
    user_id: str
    kind: IncomingKind = "text"
    text: str | None = None
    payload: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    display_name: str | None = None
    language_hint: str | None = None
    media: dict | None = None
    event_id: int | None = None  # the channel's id of this update (its inbox entry), if any


@dataclass
class Understanding:
    """What the NLU made of a free-text message."""

    intent: str
    confidence: float
    entities: list[dict] = field(default_factory=list)
    ranking: list[tuple[str, float]] = field(default_factory=list)


# The intent of an Understanding when the model could not be asked (Rasa's HTTP server did not
# answer in time, nlu/remote.py): the turn goes on as it does without a model, nothing is
# understood and the step is shown again. Staff see it on the turn, as the model's answer.
NLU_UNAVAILABLE = "nlu_unavailable"


def numbered(index: int, label: str) -> str:
    """A button as numbered text ("2. My requests"): how every channel without buttons shows
    them, how a voice note reads them out, and what a typed number presses."""
    return f"{index}. {label}"


def numbered_choices(labels: list[str]) -> list[str]:
    """Button labels as numbered text, from 1."""
    return [numbered(i, label) for i, label in enumerate(labels, start=1)]


def reply_to_stored(reply: Reply, *, senior: bool, location_label: str | None = None) -> dict:
    """A Reply as the outbox stores it: what to show, and how (senior mode) as set at that
    moment. `location_label` names the "share my location" button where one is asked for."""
    stored = {
        "text": reply.text,
        "buttons": [[b.label, b.payload] for b in reply.buttons],
        "request_location": reply.request_location,
        "rtl": reply.rtl,
        "language": reply.language,
        "senior": senior,
        "source": reply.source,  # a fixed message's msgid (console: clips)
    }
    if reply.request_location and location_label is not None:
        stored["location_label"] = location_label
    if reply.venue is not None:
        stored["venue"] = {"latitude": reply.venue.latitude, "longitude": reply.venue.longitude,
                           "title": reply.venue.title, "address": reply.venue.address}
    return stored


def reply_from_stored(stored: dict) -> Reply:
    """The Reply a stored outbox payload describes (for channels that show messages at the
    next turn)."""
    return Reply(
        text=stored["text"],
        buttons=[Button(label, data) for label, data in stored.get("buttons", [])],
        request_location=stored.get("request_location", False),
        rtl=stored.get("rtl", False),
        language=stored.get("language", ""),
        venue=Venue(**stored["venue"]) if stored.get("venue") else None,
    )


def spoken_text(replies: list[Reply]) -> str:
    """What a voice note says for a turn: each reply, and the buttons read out with numbers."""
    parts = []
    for reply in replies:
        if reply.venue is None:  # a map pin is not read: the reply before it says the place
            parts.append(reply.text)
        parts += [numbered(i, button.label) + "." for i, button in enumerate(reply.buttons,
                                                                             start=1)]
    return "\n".join(parts)


def voice_payload(t: Translator, resident: Resident, replies: list[Reply]) -> dict:
    """The stored form of the spoken version of a turn; the note is sent if no voice exists."""
    return {
        "voice": True,
        "text": spoken_text(replies),
        "language": t.language,
        "slow": bool(resident.senior_mode),
        "source": replies[0].source if len(replies) == 1 else None,
        # Only audio of shared text is cached: a reply quoting a resident's words, address or
        # request is spoken afresh each time and never written to disk (nothing for /forget).
        "cache": all(reply.shared or reply.source for reply in replies),
        "note": t("There is no voice for this language yet, so this answer is in text only."),
    }
