"""Which channels this installation has: the one place that names them (a new channel: one line).

Every process fills its ChannelRegistry from here (the bot, the staff console, staff commands),
so a notice published from the console knows that Telegram plays voice notes even though the
console runs no Telegram channel.
"""

from __future__ import annotations

from bot.channels.base import ChannelRegistry
from bot.channels.telegram import TelegramChannel
from bot.channels.terminal import TerminalChannel

CHANNELS = (
    TerminalChannel,
    TelegramChannel,
)


def installed_channels() -> ChannelRegistry:
    """What each of this installation's channels carries, by name."""
    return ChannelRegistry.of(*CHANNELS)
