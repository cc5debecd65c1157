"""`linli notices`: add, publish (and push) and list notices."""

from __future__ import annotations

import sys

from bot.cli.common import (
    deliver,
    local_time,
)


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
        deliver(config, db, service.delivery_prefix(args.id), args.rate, f"notice {args.id}")
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
            print(f"{notice.id}	{state}	{notice.topic}	{local_time(config, notice.published_at)}"
                  f"	until {local_time(config, notice.expires_at)}	pushed: "
                  f"{sum(pushed.values())} ({pushed.get('sent', 0)} sent)	{title}")
    db.dispose()
    return 0
