"""The process wiring: which channels this installation has (a new channel: one line in
CHANNELS), and `serve`, which runs them with the staff console.

Every process fills its ChannelRegistry from here (the bot, the staff console, staff commands),
so a notice published from the console knows that Telegram plays voice notes even though the
console runs no Telegram channel.
"""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import anyio.to_thread

from bot.channels.base import ChannelRegistry
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.settings import Settings
from bot.channels.terminal import TerminalChannel
from bot.channels.web import WebChannel
from bot.cluster import Leadership
from bot.config import Config
from bot.console.server import serve_console
from bot.db import Database
from bot.services import alerts as alert_service

if TYPE_CHECKING:
    from bot.core import Assistant

THREADS = 4  # threads for blocking calls, in each of asyncio's and Starlette's pools

CHANNELS = (
    TerminalChannel,
    TelegramChannel,
    WebChannel,
)


def installed_channels() -> ChannelRegistry:
    """What each of this installation's channels carries, by name."""
    return ChannelRegistry.of(*CHANNELS)


async def serve(config: Config, db: Database, assistant: Assistant, settings: Settings | None,
                voice=None, console: tuple | None = None, shared_ports: bool = False) -> None:
    """Runs the Telegram channel (if `settings`), and the staff console with the web chat in
    front of it (if `console`, as (app, host, port)), until SIGINT or SIGTERM.

    Several of these may share one PostgreSQL database (`linli serve --workers`, or on several
    machines): one of them is elected to send and to run the jobs only one may run
    (bot/cluster.py). `shared_ports`: the workers on this machine listen on the same ports."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # Database connections: each worker's pool holds 15 (bot/db.py, docs/deploy.md). Turns take
    # at most MAX_TURNS_AT_ONCE (bot/core.py), asyncio's threads and Starlette's at most
    # THREADS each, the event loop's own calls one: never more than the pool, so that no call
    # on the event loop waits for a connection that only the loop could free.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="db"))
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    leadership = Leadership(db)
    # Built inside the running loop: python-telegram-bot's queues belong to it.
    channels = [TelegramChannel(config, db, assistant, settings, voice=voice,
                                leadership=leadership, shared_ports=shared_ports)] \
        if settings else []
    console_task = None
    if console is not None:
        app, host, port = console
        web = WebChannel(config, db, assistant, voice=voice)  # /chat, beside the console
        channels.append(web)
        console_task = asyncio.create_task(
            serve_console(web.wrap(app), host, port, stop, shared=shared_ports))
    for channel in channels:
        await channel.start()
    jobs: list[asyncio.Task] = []

    async def elected() -> None:
        # Area alerts: silent residents flagged by staff go on the check list when it is time.
        jobs.append(asyncio.create_task(alert_service.watch_checks(db, stop)))

    election = None
    if settings:
        leadership.when_elected(elected)
        await leadership.elect_now()
        election = asyncio.create_task(leadership.run(stop))
    else:  # the console only (`linli console`): it must not win the sender's election
        await elected()
    try:
        if console_task is not None:
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({console_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            # The web chat's open pages hold their connections: their streams end first, so
            # that the server can finish.
            for channel in reversed(channels):
                await channel.stop()
            channels = []
            await console_task  # raises if the port is taken
        await stop.wait()
    finally:
        stop.set()
        for channel in reversed(channels):
            await channel.stop()
        for job in jobs:
            await job
        if election is not None:
            await election
