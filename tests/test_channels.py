"""The Channel protocol (bot/channels/base.py): what a channel carries is asked of the registry
the wiring fills, never of a list of channel names; buttons fall back to numbered text."""

from __future__ import annotations

import inspect
import typing

from bot.channels.base import ChannelRegistry
from bot.channels.terminal import render
from bot.core import Assistant
from bot.messages import OUTBOX, PHOTO, VOICE, Button, Capability, Reply, spoken_text
from bot.wiring import CHANNELS, installed_channels
from tests.conftest import Chat


def test_every_installed_channel_has_a_name_what_it_carries_a_transport_start_and_stop():
    capabilities = set(typing.get_args(Capability))
    for channel in CHANNELS:
        assert isinstance(channel.name, str) and channel.name
        assert set(channel.carries) <= capabilities, channel
        assert inspect.iscoroutinefunction(channel.start)
        assert inspect.iscoroutinefunction(channel.stop)
        assert "transport" in vars(channel) or "transport" in channel.__annotations__
    assert len({channel.name for channel in CHANNELS}) == len(CHANNELS)
    registry = installed_channels()
    assert registry.carries("telegram", PHOTO) and registry.carries("telegram", OUTBOX)
    assert not registry.carries("terminal", PHOTO)
    assert not registry.carries("a-channel-nobody-installed", PHOTO)


def report_until_after_the_place(resident: Chat) -> tuple:
    resident.onboard("en")
    resident.press_payload("menu:report")
    resident.press_payload("cat:facility_repair")
    voice_hint = resident.t("You can also send a voice note.") in resident.text
    resident.send("The lift in building 5 is broken")
    resident.send("Building 5")
    return resident.state()[:2], voice_hint


def test_the_photo_step_and_the_voice_hint_follow_what_the_channel_carries(config, db):
    # A channel named in no code, which the wiring says carries photos and voice notes…
    kiosk = Assistant(config, db, channels=ChannelRegistry({"kiosk": frozenset({PHOTO, VOICE})}))
    assert report_until_after_the_place(Chat(kiosk, "k1", channel="kiosk")) == (
        ("report", "photo"), True)
    # …and one it does not know: text and numbered choices only, so no photo step.
    assert report_until_after_the_place(Chat(kiosk, "w1", channel="web")) == (
        ("report", "confirm"), False)


def test_buttons_are_the_same_numbered_text_on_screen_and_in_a_voice_note():
    reply = Reply(text="What would you like to do?",
                  buttons=[Button("Report a problem", "menu:report"), Button("My requests", "m")])
    assert render([reply]).splitlines()[1:3] == ["  1. Report a problem", "  2. My requests"]
    assert spoken_text([reply]).splitlines()[1:] == ["1. Report a problem.", "2. My requests."]
