"""The `linli` command line: chat, serve, db, demo, requests, notices, polls, nlu, i18n."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import warnings
from datetime import timezone
from pathlib import Path

from bot.config import ConfigError, load_config

log = logging.getLogger("linli")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request's URL at INFO, and the Bot API's URLs contain the bot's token.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _load_understander():
    """The trained NLU model, or None (buttons and numbers still work) with a warning."""
    from nlu.engine import NoModel, RasaUnderstander

    try:
        config = load_config()
        if sys.stdin.isatty():
            print("loading the language model…", file=sys.stderr)
        return RasaUnderstander(config)
    except NoModel as exc:
        log.warning("free text will not be understood: %s", exc)
        return None


def _silence_library_warnings() -> None:
    """Residents at the terminal see none of the libraries' warnings (TensorFlow, jax,
    SQLAlchemy, matplotlib): TensorFlow's C++ log level is read once, when it is imported,
    and the libraries add warning filters of their own on import, so warnings are also not
    shown at all: they are logged at DEBUG, by category only."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    warnings.simplefilter("ignore")

    def to_debug_log(message, category, filename, lineno, file=None, line=None) -> None:
        log.debug("library warning %s from %s", category.__name__, filename)

    warnings.showwarning = to_debug_log


def cmd_chat(args) -> int:
    _silence_library_warnings()  # before the imports below, which load the libraries
    from bot.app import build
    from bot.channels.terminal import Speaker, TerminalChannel
    from bot.voice import Voice

    config, db, assistant = build(understander=_load_understander())
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
    config, db, assistant = build(understander=_load_understander() if settings else None)
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


def cmd_db_upgrade(args) -> int:
    from bot.db import Database, sync_catalogue, upgrade

    config = load_config()
    upgrade(config.database_url)
    db = Database(config.database_url)
    sync_catalogue(db, config)
    db.dispose()
    print("database is up to date", file=sys.stderr)
    return 0


def cmd_demo_seed(args) -> int:
    from bot.app import build
    from bot.demo import seed, seed_staff

    config, db, _ = build()
    created = seed(db)
    name, password = seed_staff(db, config.data_dir)
    db.dispose()
    print("demo community seeded" if created else "demo community already seeded",
          file=sys.stderr)
    print(f"staff console: start it with `.venv/bin/linli console`, then open "
          f"http://{config.console.host}:{config.console.port}/ and log in as {name} "
          f"(admin) with password {password or '(set earlier; see linli staff add-user)'}",
          file=sys.stderr)
    return 0


def cmd_requests_list(args) -> int:
    from bot.app import build
    from bot.services import requests as service

    config, db, _ = build()
    tz = config.tz
    with db.session() as session:
        rows = service.staff_list(session, status=args.status, overdue=args.overdue)
        if not rows:
            print("no requests match")
        for request in rows:
            created = request.created_at.replace(tzinfo=timezone.utc)
            due = request.due_at.replace(tzinfo=created.tzinfo)
            flag = " OVERDUE" if service.is_overdue(request) else ""
            print(
                f"{request.tracking_number}\t{request.status}\t{request.category_id}\t"
                f"{request.department_id}\t{created.astimezone(tz):%Y-%m-%d %H:%M}\t"
                f"due {due.astimezone(tz):%Y-%m-%d %H:%M}{flag}"
            )
    db.dispose()
    return 0


def cmd_requests_set_status(args) -> int:
    from bot.app import build, staff_actions
    from bot.services import requests as service

    _config, db, assistant = build()
    try:
        with db.session() as session:
            event = staff_actions(assistant).change_status(
                session,
                args.tracking_number,
                args.status,
                actor=f"staff:{args.actor}",
                note=args.note,
                department_id=args.department,
                duplicate_of=args.duplicate_of,
            )
            tracking_number = event.request.tracking_number
    except service.RequestError as exc:
        print(f"linli requests set-status: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(f"{tracking_number} is now {args.status}; the resident is told at their next turn")
    return 0


def _when(config, moment) -> str:
    """A stored (naive UTC) time in the community's zone, for staff."""
    if moment is None:
        return "-"
    return f"{moment.replace(tzinfo=timezone.utc).astimezone(config.tz):%Y-%m-%d %H:%M}"


def _deliver(config, db, key_prefix: str, rate: float, what: str) -> None:
    """Sends the Telegram rows of one push now (if a token is set), then prints the count
    per channel: sent, failed, pending, unconfirmed."""
    from bot.push import counts, push_telegram, summary

    if rate <= 0:
        raise SystemExit("linli: --rate must be above 0")
    token = os.environ.get("LINLI_TELEGRAM_TOKEN", "").strip()
    if token and counts(db, key_prefix, "telegram"):
        asyncio.run(push_telegram(config, db, key_prefix, rate))
    for channel in _channels(db, key_prefix):
        note = ""
        if channel == "terminal":
            note = " (a terminal resident sees it with their next message)"
        elif channel == "telegram" and not token:
            note = " (LINLI_TELEGRAM_TOKEN is not set: `linli serve` sends the pending ones)"
        print(f"{what} on {channel}: {summary(counts(db, key_prefix, channel))}{note}")


def _channels(db, key_prefix: str) -> list[str]:
    from sqlalchemy import distinct, select

    from bot.models import OutboxMessage
    from bot.services import outbox

    with db.session() as session:
        return sorted(session.execute(
            select(distinct(OutboxMessage.channel)).where(outbox.keyed(key_prefix))
        ).scalars())


def cmd_notices_add(args) -> int:
    from bot.app import build
    from bot.services import notices as service
    from bot.specs import load_notice

    config, db, _ = build()
    spec = load_notice(args.file, config)
    with db.session() as session:
        notice = service.add(session, spec)
        notice_id = notice.id
    db.dispose()
    missing = [lang for lang in config.language_ids if lang not in spec.texts]
    print(f"notice {notice_id} added (not published): linli notices publish {notice_id}")
    if missing:
        print(f"no text in {', '.join(missing)}: those residents read "
              f"{config.default_language}, with a line saying so", file=sys.stderr)
    return 0


def cmd_notices_publish(args) -> int:
    from bot.app import build, staff_actions
    from bot.services import notices as service

    config, db, assistant = build()
    try:
        with db.session() as session:
            _, subscribers, queued = staff_actions(assistant).publish_notice(session, args.id)
        print(f"notice {args.id} is published; {subscribers} subscriber(s), "
              f"{queued} newly queued", file=sys.stderr)
        _deliver(config, db, service.delivery_prefix(args.id), args.rate, f"notice {args.id}")
    except service.NoticeError as exc:
        print(f"linli notices publish: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0


def cmd_notices_list(args) -> int:
    from bot.app import build
    from bot.models import utcnow
    from bot.services import notices as service
    from bot.services import outbox

    config, db, _ = build()
    now = utcnow()
    with db.session() as session:
        rows = service.staff_list(session)
        if not rows:
            print("no notices")
        for notice in rows:
            if notice.published_at is None:
                state = "draft"
            elif notice.expires_at is not None and notice.expires_at <= now:
                state = "expired"
            else:
                state = "published"
            pushed = outbox.counts(session, service.delivery_prefix(notice.id),
                                   first_only=True)
            title = notice.texts[config.default_language]["title"]
            print(f"{notice.id}	{state}	{notice.topic}	{_when(config, notice.published_at)}"
                  f"	until {_when(config, notice.expires_at)}	pushed: "
                  f"{sum(pushed.values())} ({pushed.get('sent', 0)} sent)	{title}")
    db.dispose()
    return 0


def _poll_command(args, action) -> int:
    from bot.app import build
    from bot.services import polls as service

    config, db, assistant = build()
    try:
        return action(config, db, assistant)
    except service.PollError as exc:
        print(f"linli polls {args.polls_command}: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()


def cmd_polls_add(args) -> int:
    from bot.services import polls as service
    from bot.specs import load_poll

    def action(config, db, _):
        spec = load_poll(args.file, config)
        with db.session() as session:
            poll_id = service.add(session, spec).id
        print(f"poll {poll_id} added (draft): linli polls open {poll_id}")
        return 0

    return _poll_command(args, action)


def cmd_polls_open(args) -> int:
    from bot.app import staff_actions

    def action(config, db, assistant):
        with db.session() as session:
            poll = staff_actions(assistant).open_poll(session, args.id)
            opens, closes = _when(config, poll.opens_at), _when(config, poll.closes_at)
        print(f"poll {args.id} is open (votes from {opens}, until {closes}); close it with: "
              f"linli polls close {args.id}")
        return 0

    return _poll_command(args, action)


def cmd_polls_close(args) -> int:
    from bot.app import staff_actions
    from bot.services import polls as service

    def action(config, db, assistant):
        with db.session() as session:
            _, queued = staff_actions(assistant).close_poll(session, args.id)
        print(f"poll {args.id} is closed; results newly queued for {queued} participant(s)",
              file=sys.stderr)
        _deliver(config, db, service.result_prefix(args.id), args.rate,
                 f"poll {args.id} results")
        return 0

    return _poll_command(args, action)


def cmd_polls_results(args) -> int:
    from bot.services import polls as service

    def action(config, db, _):
        language = config.default_language
        with db.session() as session:
            poll = service.get(session, args.id)
            outcome = service.results(session, poll)
            texts = poll.texts[language]
            print(f"poll {poll.id} ({poll.status}): {texts['question']}")
            if not outcome.counted:
                print(f"voters on the roll {outcome.voters}; eligible {outcome.eligible}; "
                      f"turnout so far {outcome.turnout:.1f}%")
                print("counts: none while the poll is open (the ballots are sealed and "
                      f"counted at closing: linli polls close {poll.id})")
            for option in poll.options if outcome.counted else []:
                label = option["text"].get(language) or next(iter(option["text"].values()))
                print(f"  {option['id']}	{outcome.counts[option['id']]}	"
                      f"{outcome.percent(option['id']):.1f}%	{label}")
            if outcome.counted:
                print(f"ballots {outcome.ballots}; voters on the roll {outcome.voters}; "
                      f"eligible {outcome.eligible}; turnout {outcome.turnout:.1f}%")
            if outcome.counted and outcome.voters != outcome.ballots:
                print(f"{outcome.voters - outcome.ballots} voter(s) withdrew a ballot to "
                      "change it and did not choose again")
            pending = [o for o in service.opinions(session, poll.id)
                       if o.moderation == "pending"]
            print(f"opinions approved {len(outcome.opinions)}, waiting for moderation "
                  f"{len(pending)} (linli polls opinions {poll.id})")
        return 0

    return _poll_command(args, action)


def cmd_polls_list(args) -> int:
    from bot.services import polls as service

    def action(config, db, _):
        with db.session() as session:
            rows = service.staff_list(session)
            if not rows:
                print("no polls")
            for poll in rows:
                where = ", ".join(poll.buildings) if poll.buildings else "everyone"
                print(f"{poll.id}	{poll.status}	{_when(config, poll.opens_at)} → "
                      f"{_when(config, poll.closes_at)}	{where}	"
                      f"{poll.texts[config.default_language]['question']}")
        return 0

    return _poll_command(args, action)


def cmd_polls_opinions(args) -> int:
    from bot.services import polls as service

    def action(config, db, _):
        with db.session() as session:
            service.get(session, args.id)
            for opinion_id in args.approve or []:
                service.moderate(session, args.id, opinion_id, "approved")
            for opinion_id in args.reject or []:
                service.moderate(session, args.id, opinion_id, "rejected")
            for opinion in service.opinions(session, args.id):
                print(f"{opinion.id}	{opinion.moderation}	{opinion.language}	"
                      f"{opinion.stance or '-'}	{' '.join(opinion.text.split())}")
        return 0

    return _poll_command(args, action)


def cmd_nlu_train(args) -> int:
    from nlu.engine import model_path, train

    config = load_config()
    target = model_path(config)
    if target.is_file() and not args.force:
        print(f"NLU model is up to date: {target}", file=sys.stderr)
        return 0
    print(f"training the NLU model {target.name} (about a minute; progress below)",
          file=sys.stderr)
    # Progress: Rasa's training hooks name each pipeline component as it starts and ends
    # (component names only, never training text).
    logging.getLogger("rasa.engine.training.hooks").setLevel(logging.INFO)
    started = time.monotonic()
    path, _ = train(config, force=args.force)
    print(f"NLU model written in {time.monotonic() - started:.0f} s: {path}", file=sys.stderr)
    return 0


def cmd_nlu_test(args) -> int:
    from nlu.engine import NoModel, RasaUnderstander
    from nlu.evaluate import TEST_SETS, evaluate, report

    config = load_config()
    try:
        understander = RasaUnderstander(config)
    except NoModel as exc:
        print(f"linli nlu test: {exc}", file=sys.stderr)
        return 2
    print(f"model {understander.path.name}, held-out sets under nlu/tests/", file=sys.stderr)
    for kind, pattern in TEST_SETS.items():
        print(f"\n{kind} set (nlu/tests/{pattern.format(language='<language>')})\n")
        print(report(evaluate(understander, config, kind)))
    return 0


def cmd_nlu_predict(args) -> int:
    import json
    import os

    from nlu.engine import NoModel, RasaUnderstander

    # Only our JSON lines may reach standard output: whatever Rasa, TensorFlow or their C
    # libraries print while loading goes to standard error instead.
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        config = load_config()
        understander = RasaUnderstander(config)
    except NoModel as exc:
        print(f"linli nlu predict: {exc}", file=sys.stderr)
        return 2
    finally:
        sys.stdout.flush()
        os.dup2(real_stdout, 1)
        os.close(real_stdout)
    out = sys.stdout

    async def run() -> None:
        for line in sys.stdin:
            try:
                item = json.loads(line)
                text = item["text"]
                if not isinstance(text, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                out.write(json.dumps({"error": "expected {\"text\": ..., \"lang\": ...}"}) + "\n")
                out.flush()
                continue
            understood = await understander.parse(text, item.get("lang"))
            intent, confidence = understood.intent, understood.confidence
            if intent == "nlu_fallback" and understood.ranking:
                intent, confidence = understood.ranking[0]
            out.write(json.dumps({
                "intent": intent,
                "confidence": round(confidence, 4),
                "entities": understood.entities,
            }, ensure_ascii=False) + "\n")
            out.flush()

    asyncio.run(run())
    return 0


def _read_password(name: str, command: str = "add-user") -> str:
    """Asked twice on a terminal (not echoed); otherwise the first line of standard input."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != first:
            raise SystemExit(f"linli staff {command}: the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_staff_add_user(args) -> int:
    from bot.app import build
    from bot.console import auth

    config, db, _ = build()
    language = args.language or (config.default_language if config.default_language
                                 in auth.STAFF_LANGUAGES else "en")
    password = _read_password(args.name)
    try:
        with db.session() as session:
            user = auth.add_user(session, args.name, password, args.role, language)
            name = user.name
    except auth.AccountError as exc:
        print(f"linli staff add-user: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(f"staff account {name} ({args.role}) added; log in at "
          f"http://{config.console.host}:{config.console.port}/")
    return 0


def cmd_staff_list(args) -> int:
    from sqlalchemy import select

    from bot.app import build
    from bot.console.models import StaffUser

    config, db, _ = build()
    with db.session() as session:
        users = list(session.execute(select(StaffUser).order_by(StaffUser.name)).scalars())
        if not users:
            print("no staff accounts: linli staff add-user NAME --role admin")
        for user in users:
            print(f"{user.name}\t{user.role}\t{user.language}\t"
                  f"{'active' if user.active else 'disabled'}\t"
                  f"last login {_when(config, user.last_login_at)}")
    db.dispose()
    return 0


def cmd_staff_account(args) -> int:
    """disable, enable or reset-password: one account, by name; each is in the audit log."""
    from bot.app import build
    from bot.console import auth

    command = args.staff_command
    _config, db, _ = build()
    password = _read_password(args.name, command) if command == "reset-password" else None
    try:
        with db.session() as session:
            if command == "reset-password":
                user = auth.reset_password(session, args.name, password, actor="cli")
            else:
                user = auth.set_active(session, args.name, command == "enable", actor="cli")
            name = user.name
    except auth.AccountError as exc:
        print(f"linli staff {command}: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    done = {"disable": "disabled; its sessions have ended", "enable": "enabled",
            "reset-password": "has a new password; its sessions have ended"}[command]
    print(f"staff account {name} {done}")
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


def cmd_i18n_compile(args) -> int:
    from bot.i18n import compile_catalogs

    config = load_config()
    written = compile_catalogs(config.locales_dir)
    print(f"compiled {len(written)} catalog(s)", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="linli", description="Linli (邻里) community assistant")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO to standard error")
    sub = p.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="chat as a resident in the terminal")
    chat.add_argument("--resident", default="demo", help="who is talking (default: demo)")
    chat.add_argument("--play", action="store_true",
                      help="with voice on, play each reply's audio (paplay or aplay)")
    chat.set_defaults(func=cmd_chat)

    serve_parser = sub.add_parser(
        "serve", help="the staff console, and Telegram when LINLI_TELEGRAM_TOKEN is set")
    serve_parser.add_argument("--host", help="console address (default: config.yml console:)")
    serve_parser.add_argument("--port", type=int, help="console port")
    serve_parser.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)

    demo = sub.add_parser("demo", help="demo data").add_subparsers(dest="demo_command",
                                                                  required=True)
    demo.add_parser("seed", help="seed the demo community").set_defaults(func=cmd_demo_seed)

    req = sub.add_parser("requests", help="staff tools for requests").add_subparsers(
        dest="requests_command", required=True
    )
    listing = req.add_parser("list", help="list requests, newest first")
    listing.add_argument("--status")
    listing.add_argument("--overdue", action="store_true")
    listing.set_defaults(func=cmd_requests_list)
    status = req.add_parser("set-status", help="change a request's status")
    status.add_argument("tracking_number")
    status.add_argument("status")
    status.add_argument("--note")
    status.add_argument("--department")
    status.add_argument("--duplicate-of")
    status.add_argument("--actor", default="cli", help="who makes the change (audit)")
    status.set_defaults(func=cmd_requests_set_status)

    notices = sub.add_parser("notices", help="staff tools for notices").add_subparsers(
        dest="notices_command", required=True
    )
    notice_add = notices.add_parser("add", help="add a notice from a YAML file (not published)")
    notice_add.add_argument("file", type=Path)
    notice_add.set_defaults(func=cmd_notices_add)
    publish = notices.add_parser("publish", help="publish a notice and push it to subscribers")
    publish.add_argument("id", type=int)
    publish.add_argument("--rate", type=float, default=30.0,
                         help="Telegram messages per second (default 30)")
    publish.set_defaults(func=cmd_notices_publish)
    notices.add_parser("list", help="list notices, newest first").set_defaults(
        func=cmd_notices_list)

    polls = sub.add_parser("polls", help="staff tools for consultations").add_subparsers(
        dest="polls_command", required=True
    )
    poll_add = polls.add_parser("add", help="add a poll from a YAML file (as a draft)")
    poll_add.add_argument("file", type=Path)
    poll_add.set_defaults(func=cmd_polls_add)
    poll_open = polls.add_parser("open", help="open a poll for votes")
    poll_open.add_argument("id", type=int)
    poll_open.set_defaults(func=cmd_polls_open)
    poll_close = polls.add_parser("close", help="close a poll and send everyone who took "
                                                "part the results")
    poll_close.add_argument("id", type=int)
    poll_close.add_argument("--rate", type=float, default=30.0,
                            help="Telegram messages per second (default 30)")
    poll_close.set_defaults(func=cmd_polls_close)
    poll_results = polls.add_parser("results", help="counts, turnout and opinions so far")
    poll_results.add_argument("id", type=int)
    poll_results.set_defaults(func=cmd_polls_results)
    polls.add_parser("list", help="list polls, newest first").set_defaults(func=cmd_polls_list)
    poll_opinions = polls.add_parser("opinions", help="list a poll's opinions; approve or "
                                                      "reject them for the results")
    poll_opinions.add_argument("id", type=int)
    poll_opinions.add_argument("--approve", nargs="+", metavar="OPINION")
    poll_opinions.add_argument("--reject", nargs="+", metavar="OPINION")
    poll_opinions.set_defaults(func=cmd_polls_opinions)

    nlu = sub.add_parser("nlu", help="language understanding").add_subparsers(
        dest="nlu_command", required=True
    )
    nlu_train = nlu.add_parser("train", help="train the model (only if data or config changed)")
    nlu_train.add_argument("--force", action="store_true", help="train even if up to date")
    nlu_train.set_defaults(func=cmd_nlu_train)
    nlu.add_parser("test", help="score the model on nlu/tests/ (long and short sets)"
                   ).set_defaults(func=cmd_nlu_test)
    nlu.add_parser("predict", help="JSON lines in, JSON lines out (nlu-contract.md)"
                   ).set_defaults(func=cmd_nlu_predict)

    staff = sub.add_parser("staff", help="staff console accounts").add_subparsers(
        dest="staff_command", required=True)
    add_user = staff.add_parser("add-user", help="add a console account (password asked, or "
                                                 "read from standard input)")
    add_user.add_argument("name")
    add_user.add_argument("--role", required=True, choices=("admin", "staff", "viewer"))
    add_user.add_argument("--language", choices=("zh_Hans", "en"),
                          help="page language (default: the community's, else English)")
    add_user.set_defaults(func=cmd_staff_add_user)
    staff.add_parser("list", help="list console accounts (name, role, language, active or "
                     "disabled, last login)").set_defaults(func=cmd_staff_list)
    for command, text in (("disable", "disable an account: it cannot log in, its sessions end"),
                          ("enable", "enable a disabled account again"),
                          ("reset-password", ("set a new password (asked, or the first line of "
                                             "standard input); its sessions end"))):
        account = staff.add_parser(command, help=text)
        account.add_argument("name")
        account.set_defaults(func=cmd_staff_account)

    console = sub.add_parser("console", help="serve the staff web console only")
    console.add_argument("--host", help="default: config.yml console.host or LINLI_CONSOLE_HOST")
    console.add_argument("--port", type=int,
                         help="default: config.yml console.port or LINLI_CONSOLE_PORT")
    console.set_defaults(func=cmd_console)

    i18n = sub.add_parser("i18n", help="message catalogs").add_subparsers(dest="i18n_command",
                                                                         required=True)
    i18n.add_parser("compile", help="compile .po to .mo").set_defaults(func=cmd_i18n_compile)
    return p


def main(argv: list[str] | None = None) -> int:
    # Rasa's dependencies warn about their own deprecations on import: not the operator's concern.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    args = parser().parse_args(argv)
    _setup_logging(args.verbose)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8")
    from sqlalchemy.exc import OperationalError

    from bot.app import NotMigrated

    try:
        return args.func(args)
    except (ConfigError, NotMigrated) as exc:
        print(f"linli: {exc}", file=sys.stderr)
        return 2
    except OperationalError as exc:
        print(f"linli: cannot use the database ({exc.orig}); check LINLI_DATABASE_URL",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
