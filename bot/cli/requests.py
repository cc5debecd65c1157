"""`linli requests`: staff tools for residents' requests."""

from __future__ import annotations

import sys
from datetime import timezone


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
