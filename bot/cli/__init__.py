"""The `linli` command line: chat, serve, db, demo, requests, notices, polls, alerts, nlu, i18n.

One module per command group (serving, maintenance, requests, notices, polls, nlu, staff); this
one builds the parser and runs the chosen command.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from bot.cli.alerts import cmd_alerts_continue, cmd_alerts_send, cmd_alerts_status
from bot.cli.common import setup_logging
from bot.cli.maintenance import cmd_db_upgrade, cmd_demo_seed, cmd_i18n_compile
from bot.cli.nlu import cmd_nlu_predict, cmd_nlu_serve, cmd_nlu_test, cmd_nlu_train
from bot.cli.notices import cmd_notices_add, cmd_notices_list, cmd_notices_publish
from bot.cli.polls import (
    cmd_polls_add,
    cmd_polls_close,
    cmd_polls_list,
    cmd_polls_open,
    cmd_polls_opinions,
    cmd_polls_results,
)
from bot.cli.requests import cmd_requests_list, cmd_requests_set_status
from bot.cli.serving import cmd_chat, cmd_console, cmd_serve
from bot.cli.staff import cmd_staff_account, cmd_staff_add_user, cmd_staff_list
from bot.config import ConfigError


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
    serve_parser.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="worker processes sharing the ports and the database (PostgreSQL only for N > 1; "
             "see docs/deploy.md)")
    serve_parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
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

    alerts = sub.add_parser("alerts", help="area alerts (应急预警)").add_subparsers(
        dest="alerts_command", required=True)
    alert_send = alerts.add_parser("send", help="send an area alert from a YAML file to every "
                                                "resident of its area, ahead of other messages")
    alert_send.add_argument("file", type=Path)
    alert_continue = alerts.add_parser("continue", help="queue and send what an interrupted "
                                                        "`alerts send` did not (nobody twice)")
    alert_continue.add_argument("id", type=int)
    for command, func in ((alert_send, cmd_alerts_send), (alert_continue, cmd_alerts_continue)):
        command.add_argument("--rate", type=float, default=30.0,
                             help="Telegram messages per second (default 30)")
        command.set_defaults(func=func)
    alert_status = alerts.add_parser("status", help="answers per grid and the check list")
    alert_status.add_argument("id", type=int)
    alert_status.set_defaults(func=cmd_alerts_status)

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
    nlu_serve = nlu.add_parser(
        "serve", help="Rasa's own HTTP server on the model (workers use it with LINLI_NLU_URL)")
    nlu_serve.add_argument("--host", default="127.0.0.1",
                           help="address (default 127.0.0.1: the API has no authentication)")
    nlu_serve.add_argument("--port", type=int, default=5005, help="port (default 5005)")
    nlu_serve.set_defaults(func=cmd_nlu_serve)

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

    console = sub.add_parser("console", help="serve the staff web console and the web chat")
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
    setup_logging(args.verbose)
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
