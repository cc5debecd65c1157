"""Consultations: staff open and close polls; residents cast one secret ballot and give opinions.

Secrecy (docs/polls.md): the voter roll (`poll_voters`: who voted, as a keyed digest) and the
ballots (`ballots`: what was chosen) share nothing, and a ballot holds its choice only sealed
under a key derived from the server secret (bot/keys.py), padded to one length: the order in
which rows were written (SQLite page offsets, PostgreSQL ctid/xmin/WAL) pairs a ballot with a
voter but says nothing of the choice. No count exists while a poll is open; at closing the
ballots are opened once, counted into `Poll.tally`, and deleted. Where a poll allows a change,
the voter's chat is shown a random receipt code; the ballot keeps only its keyed hash.
Presenting the code withdraws that ballot, and the resident chooses again. One ballot per voter
is enforced by the roll's unique keys in the database.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.keys import BallotKeys
from bot.models import Ballot, Poll, PollOpinion, PollVoter, Resident, utcnow
from bot.places import building_key
from bot.services import outbox
from bot.specs import PollSpec

RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed again
RECEIPT_LENGTH = 10  # 32**10 ≈ 10**15 codes (those with a digit and a letter: ~0.94 of them)
_RECEIPT_CHAR = f"[{RECEIPT_ALPHABET}]"
# A receipt inside any message ("my code is 53xtc adqlx"): two groups of five, one separator or
# none, not inside a longer word. Only codes with a digit and a letter are recognised outside
# the receipt step ("three steps" is not a code); every code issued now has both.
RECEIPT_IN_TEXT = re.compile(
    rf"(?<![0-9A-Z])({_RECEIPT_CHAR}{{5}})[\s\-_.·–—]?({_RECEIPT_CHAR}{{5}})(?![0-9A-Z])")
log = logging.getLogger(__name__)
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

def is_eligible(poll: Poll, resident: Resident) -> bool:
    if not poll.buildings:
        return True
    return building_key(resident.building) in {building_key(b) for b in poll.buildings}


def voter_digest(resident: Resident, keys: BallotKeys) -> str:
    """Who the roll says voted, kept when /forget detaches the roll from the resident: keyed
    with the server secret, so a copy of the database cannot test a guessed chat id."""
    return keys.voter_digest(resident.channel, resident.channel_user_id)


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


def roll_entry(session: Session, poll: Poll, resident: Resident,
               keys: BallotKeys) -> PollVoter | None:
    return session.execute(
        select(PollVoter).where(PollVoter.poll_id == poll.id,
                                (PollVoter.resident_id == resident.id)
                                | (PollVoter.voter == voter_digest(resident, keys)))
    ).scalars().first()


def has_voted(session: Session, poll: Poll, resident: Resident, keys: BallotKeys) -> bool:
    entry = roll_entry(session, poll, resident, keys)
    return entry is not None and entry.status == "voted"


# --- voting --------------------------------------------------------------------------------

def new_receipt() -> str:
    """A random code with at least one digit and one letter, so that it is recognised in any
    message (RECEIPT_IN_TEXT)."""
    while True:
        code = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_LENGTH))
        if any(ch.isdigit() for ch in code) and any(ch.isalpha() for ch in code):
            return f"{code[:5]}-{code[5:]}"


def normal_receipt(receipt: str) -> str:
    """The receipt as typed back ("abcde fghjk", "ABCDE-FGHJK"): its letters and digits."""
    return re.sub(r"[^0-9A-Z]", "", unicodedata.normalize("NFKC", receipt).upper())


def find_receipt(text: str | None) -> str | None:
    """A receipt code written anywhere in a message, normalised; None if there is none."""
    if not text:
        return None
    found = RECEIPT_IN_TEXT.search(unicodedata.normalize("NFKC", text).upper())
    if found is None:
        return None
    code = found.group(1) + found.group(2)
    if not (any(ch.isdigit() for ch in code) and any(ch.isalpha() for ch in code)):
        return None
    return code


def receipt_hash(poll_id: int, receipt: str, keys: BallotKeys) -> str:
    """The receipt's letters and digits, keyed with the server secret and its poll."""
    return keys.receipt_hash(poll_id, normal_receipt(receipt))


def cast(session: Session, poll: Poll, resident: Resident, option: str,
         keys: BallotKeys) -> str | None:
    """Records the resident on the roll and their choice as a sealed, unlinked ballot.

    Returns the receipt code where the poll allows a change (shown once, never stored), else
    None. A second ballot is refused here, and by the roll's unique keys in the database.
    Nothing written here names the choice in plain text: no count moves until closing.
    """
    if not is_open(poll):
        raise NotOpen()
    if not is_eligible(poll, resident):
        raise NotEligible()
    if option not in {o["id"] for o in poll.options}:
        raise UnknownOption()
    entry = roll_entry(session, poll, resident, keys)
    if entry is not None and entry.status != "changing":
        raise AlreadyVoted()
    if entry is None:
        session.add(PollVoter(poll_id=poll.id, resident_id=resident.id,
                              voter=voter_digest(resident, keys), status="voted",
                              voted_on=utcnow().date()))
    else:
        entry.status = "voted"
    receipt = new_receipt() if poll.allow_change else None
    session.add(Ballot(id=secrets.token_hex(16), poll_id=poll.id,
                       sealed=keys.seal(poll.id, option),
                       receipt_hash=receipt_hash(poll.id, receipt, keys) if receipt else None))
    session.flush()
    return receipt


def withdraw(session: Session, poll: Poll, resident: Resident, receipt: str,
             keys: BallotKeys) -> None:
    """A voter presents their receipt: that ballot is deleted and they may choose again."""
    if not poll.allow_change:
        raise ChangeNotAllowed()
    if not is_open(poll):
        raise NotOpen()
    entry = roll_entry(session, poll, resident, keys)
    if entry is None or entry.status != "voted":
        raise BadReceipt()
    ballot = session.execute(
        select(Ballot).where(Ballot.poll_id == poll.id,
                             Ballot.receipt_hash == receipt_hash(poll.id, receipt, keys))
    ).scalar_one_or_none()
    if ballot is None:
        raise BadReceipt()
    session.delete(ballot)
    entry.status = "changing"
    session.flush()


def withdraw_anywhere(session: Session, resident: Resident, receipt: str,
                      keys: BallotKeys) -> Poll | None:
    """A receipt typed outside its poll: withdraws the ballot of whichever open poll, among
    those this resident voted in and may change, it belongs to. None if it matches none."""
    for poll in open_polls(session, resident):
        if not poll.allow_change or not has_voted(session, poll, resident, keys):
            continue
        try:
            withdraw(session, poll, resident, receipt, keys)
        except BadReceipt:
            continue
        return poll
    return None


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
    """A poll's figures. `counts` exist only once it is closed (`counted`); before that there
    is turnout only, to every role: a running count beside a transcript would name votes."""

    poll: Poll
    counts: dict[str, int]  # option id -> ballots, in the poll's order (empty while open)
    ballots: int
    voters: int  # on the roll (a voter who withdrew to change and did not choose again counts)
    eligible: int
    opinions: list[PollOpinion] = field(default_factory=list)  # approved only

    @property
    def counted(self) -> bool:
        return self.poll.status == "closed" and self.poll.tally is not None

    def percent(self, option: str) -> float:
        return 100.0 * self.counts[option] / self.ballots if self.ballots else 0.0

    @property
    def turnout(self) -> float:
        return 100.0 * self.voters / self.eligible if self.eligible else 0.0


def results(session: Session, poll: Poll) -> Results:
    """Counts from the tally made at closing; while the poll is open, turnout only."""
    voters = session.execute(
        select(func.count()).select_from(PollVoter).where(PollVoter.poll_id == poll.id)
    ).scalar_one()
    opinions = list(session.execute(
        select(PollOpinion).where(PollOpinion.poll_id == poll.id,
                                  PollOpinion.moderation == "approved")
        .order_by(PollOpinion.language, PollOpinion.id)
    ).scalars())
    eligible = poll.eligible_count if poll.eligible_count is not None else eligible_count(
        session, poll)
    if poll.status == "closed" and poll.tally is not None:
        counts = {o["id"]: int(poll.tally.get(o["id"], 0)) for o in poll.options}
        return Results(poll, counts, sum(counts.values()), voters, eligible, opinions)
    ballots = session.execute(
        select(func.count()).select_from(Ballot).where(Ballot.poll_id == poll.id)
    ).scalar_one()
    return Results(poll, {}, ballots, voters, eligible, opinions)


def count_ballots(session: Session, poll: Poll, keys: BallotKeys) -> dict[str, int]:
    """Opens every sealed ballot of the poll once, stores the tally and deletes the ballots."""
    tally: Counter[str] = Counter()
    sealed = session.execute(select(Ballot.sealed).where(Ballot.poll_id == poll.id)).scalars()
    for blob in sealed:
        try:
            tally[keys.unseal(poll.id, blob)] += 1
        except InvalidTag:
            raise PollError(
                f"the ballots of poll {poll.id} cannot be opened with this server secret "
                "(LINLI_SECRET_KEY, or console-secret in the data directory, changed since "
                "they were cast); nothing was closed") from None
    poll.tally = {o["id"]: tally.get(o["id"], 0) for o in poll.options}
    session.execute(delete(Ballot).where(Ballot.poll_id == poll.id)
                    .execution_options(synchronize_session=False))
    return dict(poll.tally)


def result_prefix(poll_id: int) -> str:
    return f"poll-result:{poll_id}:"


def close(session: Session, poll_id: int,
          render: Callable[[Resident, Results], list[dict]],
          keys: BallotKeys) -> tuple[Poll, int]:
    """Closes the poll (once): counts the sealed ballots into the tally and deletes them, then
    queues the results for every participant in their language. Running it again queues
    nobody twice. Returns the poll and how many were queued now."""
    poll = get(session, poll_id)
    if poll.status == "draft":
        raise PollError(f"poll {poll_id} was never opened")
    if poll.status != "closed":
        count_ballots(session, poll, keys)
        poll.status, poll.closed_at = "closed", utcnow()
        poll.eligible_count = eligible_count(session, poll)
        session.flush()
        log.info("poll %d closed and counted", poll.id)
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
