"""What a flow step sees and does during one turn: the resident, their state, what they sent,
and the replies so far (built by the Assistant in bot/core.py, which imports the flows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session

from bot.config import Config
from bot.i18n import Catalogs, Translator
from bot.messages import Button, Capability, Incoming, Reply, Understanding, Venue
from bot.models import Resident

if TYPE_CHECKING:
    from flows.base import Flow


class Host(Protocol):
    """What flows use of the Assistant that runs them (bot.core.Assistant): the flows never
    import the core, which imports them."""

    config: Config
    catalogs: Catalogs
    flows: Mapping[str, Flow]

    def flow(self, name: str | None) -> Flow: ...

    def carries(self, channel: str, capability: Capability) -> bool: ...

    def emergency(self, ctx: Context) -> None: ...


class Context:
    """What a flow step sees and does during one turn."""

    def __init__(
        self,
        assistant: Host,
        session: Session,
        resident: Resident,
        incoming: Incoming,
        t: Translator,
    ):
        self.assistant = assistant
        self.config: Config = assistant.config
        self.session = session
        self.resident = resident
        self.incoming = incoming
        self.t = t
        self.replies: list[Reply] = []
        self.understanding: Understanding | None = None
        # Set by a flow when this turn carries a ballot (a choice, a receipt): what the resident
        # sent is then not kept in the conversation log (see docs/polls.md).
        self.secret = False

    # --- state -------------------------------------------------------------------------
    @property
    def flow(self) -> str | None:
        return self.resident.flow

    @property
    def step(self) -> str | None:
        return self.resident.step

    @property
    def slots(self) -> dict:
        return dict(self.resident.slots or {})

    def set_slots(self, **values: object) -> None:
        slots = dict(self.resident.slots or {})
        slots.update(values)
        self.resident.slots = slots

    def go(self, flow: str, step: str, slots: dict | None = None, show: bool = True) -> None:
        """Moves to `flow`/`step` (fresh slots when entering another flow) and shows its prompt."""
        if slots is not None:
            self.resident.slots = dict(slots)
        elif flow != self.resident.flow:
            self.resident.slots = {}
        self.resident.flow, self.resident.step = flow, step
        if show:
            self.show()

    def show(self) -> None:
        """Shows the prompt of the current step again."""
        self.assistant.flow(self.resident.flow).prompt(self, self.resident.step)

    def main_menu(self, intro: str | None = None) -> None:
        if intro:
            self.say(intro)
        self.go("menu", "main", slots={})

    def set_language(self, language: str) -> None:
        self.resident.language = language
        self.t = self.assistant.catalogs.translator(language)

    # --- output ------------------------------------------------------------------------
    def say(self, text: str, buttons: list[Button] | None = None, request_location: bool = False,
            secret: bool = False, shared: bool = False, venue: Venue | None = None):
        self.replies.append(
            Reply(
                text=text,
                buttons=list(buttons or []),
                request_location=request_location,
                rtl=self.t.rtl,
                language=self.t.language,
                source=self.t.source_of(text),
                secret=secret,
                shared=shared,
                venue=venue,
            )
        )

    def carries(self, capability: Capability) -> bool:
        """Whether the resident's channel carries `capability` (bot.messages: PHOTO, VOICE…)."""
        return self.assistant.carries(self.resident.channel, capability)

    def button(self, label: str, payload: str) -> Button:
        return Button(label, payload)
