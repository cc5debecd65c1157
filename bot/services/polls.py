"""Consultations: staff open and close polls; residents cast one secret ballot and give opinions.

Secrecy (docs/polls.md): the voter roll (`poll_voters`: who voted) and the ballots (`ballots`:
what was chosen) are written in the same transaction but share nothing: a ballot has a random
key, no time and no reference to a resident or to the roll. Where a poll allows a change, the
voter's chat is shown a random receipt code; the ballot keeps only its SHA-256. Presenting the
code withdraws that ballot, and the resident chooses again. One ballot per voter is enforced by
the roll's unique keys in the database.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models import Ballot, Poll, PollOpinion, PollVoter, Resident, utcnow
from bot.services import outbox
from bot.specs import PollSpec

RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed again
RECEIPT_LENGTH = 10  # 32**10 ≈ 10**15 codes
MAX_OPINION = 1000
MIN_OPINION = 2


class PollError(Exception):
    """Why a resident's or staff's action on a poll was refused."""


class NotOpen(PollError):
    pass


class NotEligible(PollError):
    pass


class AlreadyVoted(PollError):
    pass


class UnknownOption(PollError):
    pass


class BadReceipt(PollError):
    pass


class ChangeNotAllowed(PollError):
    pass


# --- who may vote --------------------------------------------------------------------------

def building_key(text: str | None) -> str:
    """A building or area as compared: its first number if it has one ("5号楼" → "5",
    "Building 05" → "5"), else its folded text."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    digits = re.search(r"\d+", folded)
    if digits:
        return str(int(digits.group()))
    return " ".join(folded.split())


def is_eligible(poll: Poll, resident: Resident) -> bool:
    if not poll.buildings:
        return True
    return building_key(resident.building) in {building_key(b) for b in poll.buildings}


def voter_digest(resident: Resident) -> str:
    """Who the roll says voted, kept when /forget detaches the roll from the resident."""
    return hashlib.sha256(f"{resident.channel}:{resident.channel_user_id}".encode()).hexdigest()


def is_open(poll: Poll) -> bool:
    now = utcnow()
    return (poll.status == "open" and (poll.opens_at is None or poll.opens_at <= now)
            and poll.closes_at > now)


def open_polls(session: Session, resident: Resident) -> list[Poll]:
    """Polls open now in which this resident may vote, closing soonest first."""
    polls = session.execute(
        select(Poll).where(Poll.status == "open").order_by(Poll.closes_at, Poll.id)
    ).scalars()
    return [poll for poll in polls if is_open(poll) and is_eligible(poll, resident)]


def roll_entry(session: Session, poll: Poll, resident: Resident) -> PollVoter | None:
    return session.execute(
        select(PollVoter).where(PollVoter.poll_id == poll.id,
                                (PollVoter.resident_id == resident.id)
                                | (PollVoter.voter == voter_digest(resident)))
    ).scalars().first()


def has_voted(session: Session, poll: Poll, resident: Resident) -> bool:
    entry = roll_entry(session, poll, resident)
    return entry is not None and entry.status == "voted"


# --- voting --------------------------------------------------------------------------------

def new_receipt() -> str:
    code = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_LENGTH))
    return f"{code[:5]}-{code[5:]}"


def receipt_hash(poll_id: int, receipt: str) -> str:
    """The receipt as typed back ("abcde fghjk", "ABCDE-FGHJK") and hashed with its poll."""
    code = re.sub(r"[^0-9A-Z]", "", unicodedata.normalize("NFKC", receipt).upper())
    return hashlib.sha256(f"{poll_id}:{code}".encode()).hexdigest()


def cast(session: Session, poll: Poll, resident: Resident, option: str) -> str | None:
    """Records the resident on the roll and their choice as an unlinked ballot.

    Returns the receipt code where the poll allows a change (shown once, never stored), else
    None. A second ballot is refused here, and by the roll's unique keys in the database.
    """
    if not is_open(poll):
        raise NotOpen()
    if not is_eligible(poll, resident):
        raise NotEligible()
    if option not in {o["id"] for o in poll.options}:
        raise UnknownOption()
    entry = roll_entry(session, poll, resident)
    if entry is not None and entry.status != "changing":
        raise AlreadyVoted()
    if entry is None:
        session.add(PollVoter(poll_id=poll.id, resident_id=resident.id,
                              voter=voter_digest(resident), status="voted",
                              voted_on=utcnow().date()))
    else:
        entry.status = "voted"
    receipt = new_receipt() if poll.allow_change else None
    session.add(Ballot(id=secrets.token_hex(16), poll_id=poll.id, option=option,
                       receipt_hash=receipt_hash(poll.id, receipt) if receipt else None))
    session.flush()
    return receipt


def withdraw(session: Session, poll: Poll, resident: Resident, receipt: str) -> None:
    """A voter presents their receipt: that ballot is deleted and they may choose again."""
    if not poll.allow_change:
        raise ChangeNotAllowed()
    if not is_open(poll):
        raise NotOpen()
    entry = roll_entry(session, poll, resident)
    if entry is None or entry.status != "voted":
        raise BadReceipt()
    ballot = session.execute(
        select(Ballot).where(Ballot.poll_id == poll.id,
                             Ballot.receipt_hash == receipt_hash(poll.id, receipt))
    ).scalar_one_or_none()
    if ballot is None:
        raise BadReceipt()
    session.delete(ballot)
    entry.status = "changing"
    session.flush()


def add_opinion(session: Session, poll: Poll, language: str, text: str,
                stance: str | None) -> PollOpinion:
    """A written opinion, pending moderation, with nothing that names its writer."""
    if not is_open(poll):
        raise NotOpen()
    if stance is not None and stance not in {o["id"] for o in poll.options}:
        raise UnknownOption()
    opinion = PollOpinion(id=secrets.token_hex(4), poll_id=poll.id, language=language,
                          stance=stance, text=text[:MAX_OPINION], moderation="pending")
    session.add(opinion)
    session.flush()
    return opinion


# --- staff ---------------------------------------------------------------------------------

def add(session: Session, spec: PollSpec) -> Poll:
    poll = Poll(texts=spec.texts, options=spec.options, buildings=spec.buildings,
                allow_change=spec.allow_change, opens_at=spec.opens_at,
                closes_at=spec.closes_at, status="draft", source=spec.source)
    session.add(poll)
    session.flush()
    return poll


def get(session: Session, poll_id: int) -> Poll:
    poll = session.get(Poll, poll_id)
    if poll is None:
        raise PollError(f"there is no poll {poll_id}")
    return poll


def open_poll(session: Session, poll_id: int) -> Poll:
    poll = get(session, poll_id)
    if poll.status == "closed":
        raise PollError(f"poll {poll_id} is closed; it cannot be opened again")
    if poll.closes_at <= utcnow():
        raise PollError(f"poll {poll_id} closes at {poll.closes_at:%Y-%m-%d %H:%M} UTC, "
                        "which has passed")
    if poll.status != "open":
        poll.status, poll.opened_at = "open", utcnow()
    return poll


def eligible_count(session: Session, poll: Poll) -> int:
    """Residents who could vote: those who chose a language, in the listed buildings."""
    residents = session.execute(select(Resident).where(Resident.language.is_not(None))).scalars()
    return sum(1 for resident in residents if is_eligible(poll, resident))


@dataclass
class Results:
    poll: Poll
    counts: dict[str, int]  # option id -> ballots, in the poll's order
    ballots: int
    voters: int  # on the roll (a voter who withdrew to change and did not choose again counts)
    eligible: int
    opinions: list[PollOpinion] = field(default_factory=list)  # approved only

    def percent(self, option: str) -> float:
        return 100.0 * self.counts[option] / self.ballots if self.ballots else 0.0

    @property
    def turnout(self) -> float:
        return 100.0 * self.voters / self.eligible if self.eligible else 0.0


def results(session: Session, poll: Poll) -> Results:
    tally = Counter(dict(session.execute(
        select(Ballot.option, func.count()).where(Ballot.poll_id == poll.id)
        .group_by(Ballot.option)
    ).all()))
    voters = session.execute(
        select(func.count()).select_from(PollVoter).where(PollVoter.poll_id == poll.id)
    ).scalar_one()
    opinions = list(session.execute(
        select(PollOpinion).where(PollOpinion.poll_id == poll.id,
                                  PollOpinion.moderation == "approved")
        .order_by(PollOpinion.language, PollOpinion.id)
    ).scalars())
    counts = {o["id"]: tally.get(o["id"], 0) for o in poll.options}
    eligible = poll.eligible_count if poll.eligible_count is not None else eligible_count(
        session, poll)
    return Results(poll, counts, sum(counts.values()), voters, eligible, opinions)


def result_prefix(poll_id: int) -> str:
    return f"poll-result:{poll_id}:"


def close(session: Session, poll_id: int,
          render: Callable[[Resident, Results], list[dict]]) -> tuple[Poll, int]:
    """Closes the poll (once) and queues the results for every participant in their language.
    Running it again queues nobody twice. Returns the poll and how many were queued now."""
    poll = get(session, poll_id)
    if poll.status == "draft":
        raise PollError(f"poll {poll_id} was never opened")
    if poll.status != "closed":
        poll.status, poll.closed_at = "closed", utcnow()
        poll.eligible_count = eligible_count(session, poll)
        session.flush()
    outcome = results(session, poll)
    prefix = result_prefix(poll_id)
    queued_before = set(session.execute(
        select(outbox.OutboxMessage.resident_id).where(outbox.keyed(prefix))
    ).scalars())
    participants = session.execute(
        select(Resident).join(PollVoter, PollVoter.resident_id == Resident.id)
        .where(PollVoter.poll_id == poll.id).order_by(Resident.id)
    ).scalars()
    queued = 0
    for resident in participants:
        if resident.id in queued_before:
            continue
        outbox.enqueue(session, resident, render(resident, outcome), kind="poll-result",
                       key=f"{prefix}{resident.id}")
        queued += 1
    return poll, queued


def opinions(session: Session, poll_id: int) -> list[PollOpinion]:
    return list(session.execute(
        select(PollOpinion).where(PollOpinion.poll_id == poll_id)
        .order_by(PollOpinion.moderation, PollOpinion.id)
    ).scalars())


def moderate(session: Session, poll_id: int, opinion_id: str, decision: str) -> PollOpinion:
    opinion = session.get(PollOpinion, opinion_id)
    if opinion is None or opinion.poll_id != poll_id:
        raise PollError(f"poll {poll_id} has no opinion {opinion_id}")
    opinion.moderation = decision
    return opinion


def staff_list(session: Session) -> list[Poll]:
    return list(session.execute(select(Poll).order_by(Poll.id.desc())).scalars())
