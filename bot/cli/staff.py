"""`linli staff`: staff console accounts."""

from __future__ import annotations

import sys

from bot.cli.common import (
    local_time,
)


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
                  f"last login {local_time(config, user.last_login_at)}")
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
