"""`linli alerts`: send an area alert from a file, continue an interrupted one, show answers."""

from __future__ import annotations

import sys

from bot.cli.common import deliver


def _fan_out(config, db, assistant, alert_id: int, rate: float) -> None:
    from bot.services import alerts as service
    from flows.alerts import renderer

    area, queued = service.send(db, config, alert_id,
                                renderer(config, assistant.catalogs, assistant.channels))
    print(f"alert {alert_id}: {area} resident(s) in its area, {queued} newly queued",
          file=sys.stderr)
    deliver(config, db, service.delivery_prefix(alert_id), rate, f"alert {alert_id}")


def cmd_alerts_send(args) -> int:
    from bot.app import build
    from bot.services import alerts as service
    from bot.specs import load_alert

    config, db, assistant = build()
    try:
        spec = load_alert(args.file, config)
        with db.session() as session:
            alert_id = service.add(session, spec, created_by="cli").id
        missing = [lang for lang in config.language_ids if lang not in spec.texts]
        if missing:
            print(f"no text in {', '.join(missing)}: those residents read "
                  f"{config.default_language}, with a line saying so", file=sys.stderr)
        _fan_out(config, db, assistant, alert_id, args.rate)
        print(f"alert {alert_id} sent; if this stopped half-way, "
              f"`linli alerts continue {alert_id}` sends the rest once")
    finally:
        db.dispose()
    return 0


def cmd_alerts_continue(args) -> int:
    from bot.app import build
    from bot.services import alerts as service

    config, db, assistant = build()
    try:
        _fan_out(config, db, assistant, args.id, args.rate)
    except service.AlertError as exc:
        print(f"linli alerts continue: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0


def cmd_alerts_status(args) -> int:
    """Per grid: safe, need help, no answer; then the check list by building (no names: the
    console shows them to the staff who may see them)."""
    from bot.app import build
    from bot.models import Alert
    from bot.services import alerts as service

    _, db, _ = build()
    try:
        with db.session() as session:
            alert = session.get(Alert, args.id)
            if alert is None:
                print(f"linli alerts status: there is no alert {args.id}", file=sys.stderr)
                return 2
            for grid_id, numbers in sorted(service.counts(session, alert.id).items(),
                                           key=lambda item: item[0] or ""):
                print(f"{grid_id or '(no grid)'}\tsafe {numbers['safe']}\t"
                      f"need help {numbers['help']}\tno answer {numbers['no_answer']}")
            for entry in service.check_list(session, alert):
                print(f"check\t{entry.grid_id or '(no grid)'}\tbuilding "
                      f"{entry.building or '?'}\tresident {entry.resident_id}\t{entry.reason}")
    finally:
        db.dispose()
    return 0
