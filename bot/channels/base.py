"""What every channel is: the `Channel` protocol, and the registry of what each channel carries.

A channel turns its platform's updates into `Incoming` messages for the Assistant (which it is
handed, and never imports back) and shows the `Reply` objects it gets: directly, as the terminal
does, or through the outbox and its `transport` (bot/delivery.py), as Telegram does. It says
what it carries (photos, voice notes, a location button, reply keyboards, the outbox) in
`carries`; the core and the flows ask that (`ctx.carries(PHOTO)`), never a list of channel
names. Buttons it cannot show as buttons it shows as numbered text
(`bot.messages.numbered_choices`), as Rasa's `OutputChannel` does: a typed number presses them
on every channel.

Adding a channel is one file plus one wiring line:
1. `bot/channels/<name>.py` with a class that has `name`, `carries`, `transport` (or None when
   it shows replies itself), `start()` and `stop()`, and that calls `assistant.handle(Incoming)`
   for each thing a resident does;
2. its class in `CHANNELS` in bot/wiring.py, so that every process (the console and staff
   commands included) knows what it carries.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import ClassVar, Protocol

from bot.delivery import Transport
from bot.messages import Capability


class Channel(Protocol):
    """A way residents reach Linli (Rasa's InputChannel/OutputChannel, opsdroid's Connector)."""

    name: ClassVar[str]  # stored on each resident (Resident.channel) and outbox row
    carries: ClassVar[frozenset[Capability]]  # beyond text and numbered choices

    @property
    def transport(self) -> Transport | None:
        """Sends this channel's outbox rows (with OUTBOX in `carries`); None otherwise."""

    async def start(self) -> None:
        """Starts taking residents' messages (and sending the outbox); returns once running,
        or, for a channel that is one conversation (the terminal), when it ends."""

    async def stop(self) -> None:
        """Stops taking messages; what was taken is finished or kept for the next start."""


class ChannelRegistry(Mapping[str, frozenset[str]]):
    """What each channel carries, by its name: filled by the process wiring (bot/wiring.py) and
    handed to the Assistant and the staff actions. A channel it does not know carries nothing
    beyond text and numbered choices."""

    def __init__(self, channels: Mapping[str, frozenset[str]] | None = None):
        self._carries = {name: frozenset(carries) for name, carries in (channels or {}).items()}

    @classmethod
    def of(cls, *channels: type[Channel] | Channel) -> ChannelRegistry:
        return cls({channel.name: channel.carries for channel in channels})

    def __getitem__(self, name: str) -> frozenset[str]:
        return self._carries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._carries)

    def __len__(self) -> int:
        return len(self._carries)

    def carries(self, name: str, capability: Capability) -> bool:
        return capability in self._carries.get(name, frozenset())
