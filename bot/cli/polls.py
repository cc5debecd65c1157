"""`linli polls`: consultations, from draft to results."""

from __future__ import annotations

import sys

from bot.cli.common import (
    deliver,
    local_time,
)


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
            opens, closes = local_time(config, poll.opens_at), local_time(config, poll.closes_at)
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
        deliver(config, db, service.result_prefix(args.id), args.rate,
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
                print(f"{poll.id}	{poll.status}	{local_time(config, poll.opens_at)} → "
                      f"{local_time(config, poll.closes_at)}	{where}	"
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
