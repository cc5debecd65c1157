"""`linli chat`, `linli serve` and `linli console`: the processes that talk to people."""

from __future__ import annotations

import asyncio
import sys

from bot.cli.common import (
    load_understander,
    silence_library_warnings,
)


def cmd_chat(args) -> int:
    silence_library_warnings()  # before the imports below, which load the libraries
    from bot.app import build
    from bot.channels.terminal import Speaker, TerminalChannel
    from bot.voice import Voice

    config, db, assistant = build(understander=load_understander())
    speaker = Speaker(assistant, Voice(config), play=args.play)
    if args.play and speaker.player is None:
        print("--play: neither paplay nor aplay is installed; the audio files are still written",
              file=sys.stderr)
    try:
        asyncio.run(TerminalChannel(assistant, args.resident, speaker=speaker).start())
    finally:
        db.dispose()
    return 0


def cmd_serve(args) -> int:
    """The staff console, and the Telegram bot when LINLI_TELEGRAM_TOKEN is set, until
    SIGINT or SIGTERM."""
    from bot.app import build
    from bot.channels.telegram.settings import Settings
    from bot.console.app import create_app
    from bot.voice import Voice
    from bot.wiring import serve

    try:
        settings = Settings.from_env()
    except ValueError as exc:  # a malformed LINLI_TELEGRAM_* variable
        print(f"linli serve: {exc}", file=sys.stderr)
        return 2
    if settings is None:
        print("LINLI_TELEGRAM_TOKEN is not set: serving the staff console only (the token "
              "comes from @BotFather)", file=sys.stderr)
    config, db, assistant = build(understander=load_understander() if settings else None)
    host = args.host or config.console.host
    port = args.port if args.port is not None else config.console.port
    if settings:
        print(f"serving Telegram ({'webhook' if settings.webhook_url else 'long polling'})",
              file=sys.stderr)
    print(f"staff console on http://{host}:{port}/ (Ctrl-C stops)", file=sys.stderr)
    try:
        asyncio.run(serve(config, db, assistant, settings, voice=Voice(config),
                          console=(create_app(config, db), host, port)))
    except OSError as exc:
        print(f"linli serve: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0


def cmd_console(args) -> int:
    """The staff web console alone, until SIGINT or SIGTERM."""
    import signal

    from bot.app import build
    from bot.console.app import create_app
    from bot.console.server import serve_console

    config, db, _ = build()
    host = args.host or config.console.host
    port = args.port if args.port is not None else config.console.port
    app = create_app(config, db)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_console(app, host, port, stop)

    print(f"staff console on http://{host}:{port}/ (Ctrl-C stops)", file=sys.stderr)
    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"linli console: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0
