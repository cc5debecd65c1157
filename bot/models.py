"""SQLAlchemy tables: residents, turns, the request catalogue and requests, outbox, notices, polls."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import declarative_base, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Base = declarative_base(metadata=MetaData(naming_convention=NAMING))


def utcnow() -> datetime:
    """Naive UTC: stored the same way on SQLite and PostgreSQL."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Resident(Base):
    """A person talking to Linli on one channel, with their profile and flow state."""

    __tablename__ = "residents"
    __table_args__ = (UniqueConstraint("channel", "channel_user_id", name="uq_residents_channel"),)

    id = Column(Integer, primary_key=True)
    channel = Column(String(32), nullable=False)
    channel_user_id = Column(String(128), nullable=False)
    display_name = Column(String(200))
    language = Column(String(16))
    voice_on = Column(Boolean, nullable=False, default=False)
    senior_mode = Column(Boolean, nullable=False, default=False)
    phone = Column(String(40))
    address = Column(String(400))
    building = Column(String(64))  # building or area, as the resident typed it (consultations)
    # Set by staff (console, audited): an area alert's silence puts them on the check list.
    lives_alone = Column(Boolean, nullable=False, default=False, server_default=false())
    elderly = Column(Boolean, nullable=False, default=False, server_default=false())
    flow = Column(String(64))
    step = Column(String(64))
    slots = Column(JSON, nullable=False, default=dict)
    offered = Column(JSON, nullable=False, default=list)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_seen_at = Column(DateTime, nullable=False, default=utcnow)
    # Bumped by every UPDATE, which only applies if nobody else changed the row since it was
    # read (StaleDataError otherwise): a resident's turn and a staff action in the console
    # (answer, hand back) never overwrite each other's state; the loser is run again.
    version = Column(Integer, nullable=False, default=1, server_default="1")

    __mapper_args__: ClassVar[dict] = {"version_id_col": version}


class Turn(Base):
    """One message in or out of a conversation."""

    __tablename__ = "turns"
    __table_args__ = (Index("ix_turns_resident_at", "resident_id", "at"),)

    id = Column(Integer, primary_key=True)
    resident_id = Column(Integer, ForeignKey("residents.id", ondelete="CASCADE"), nullable=False)
    at = Column(DateTime, nullable=False, default=utcnow)
    channel = Column(String(32), nullable=False)
    direction = Column(String(3), nullable=False)  # "in" or "out"
    kind = Column(String(16), nullable=False)  # text, button, command, location, resume, ...
    text = Column(Text)
    payload = Column(String(200))
    language = Column(String(16))
    intent = Column(String(64))
    confidence = Column(Float)
    entities = Column(JSON)
    flow = Column(String(64))
    step = Column(String(64))


class Department(Base):
    """A department that handles requests, mirrored from config.yml."""

    __tablename__ = "departments"

    id = Column(String(48), primary_key=True)
    names = Column(JSON, nullable=False)
    active = Column(Boolean, nullable=False, default=True)


class Category(Base):
    """A request category, mirrored from config.yml."""

    __tablename__ = "categories"

    id = Column(String(48), primary_key=True)
    department_id = Column(String(48), ForeignKey("departments.id"), nullable=False)
    time_limit_hours = Column(Integer, nullable=False)
    names = Column(JSON, nullable=False)
    position = Column(Integer, nullable=False, default=0)
    active = Column(Boolean, nullable=False, default=True)


class Request(Base):
    """A resident's service request (诉求), from submission to a rated close."""

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_resident_created", "resident_id", "created_at"),
        Index("ix_requests_status", "status"),
        Index("ix_requests_grid_status", "grid_id", "status"),
    )

    id = Column(Integer, primary_key=True)
    tracking_number = Column(String(24), nullable=False, unique=True)
    resident_id = Column(Integer, ForeignKey("residents.id", ondelete="SET NULL"))
    category_id = Column(String(48), ForeignKey("categories.id"), nullable=False)
    department_id = Column(String(48), ForeignKey("departments.id"), nullable=False)
    grid_id = Column(String(48))  # config.yml's grids; None when its place is in none of them
    description = Column(Text, nullable=False)
    location_text = Column(Text)
    latitude = Column(Float)
    longitude = Column(Float)
    language = Column(String(16), nullable=False)
    channel = Column(String(32), nullable=False)
    status = Column(String(16), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow)
    due_at = Column(DateTime, nullable=False)
    resolved_at = Column(DateTime)
    closed_at = Column(DateTime)
    rating = Column(Integer)
    rated_at = Column(DateTime)
    duplicate_of_id = Column(Integer, ForeignKey("requests.id"))
    # /forget: the resident asked for their data to be erased while the request was still
    # open; its description, place, photos and voice notes go when it is finished.
    erase_when_finished = Column(Boolean, nullable=False, default=False,
                                 server_default=false())
    erased_at = Column(DateTime)  # when the resident's words, place and media were erased

    events = relationship(
        "RequestEvent", order_by="RequestEvent.id", back_populates="request", lazy="selectin"
    )
    category = relationship("Category", lazy="joined")
    attachments = relationship("Attachment", order_by="Attachment.id", lazy="selectin")


class RequestEvent(Base):
    """A status change of a request; `notified_at` is set once the resident has been told."""

    __tablename__ = "request_events"
    __table_args__ = (Index("ix_request_events_request", "request_id"),)

    id = Column(Integer, primary_key=True)
    request_id = Column(Integer, ForeignKey("requests.id", ondelete="CASCADE"), nullable=False)
    at = Column(DateTime, nullable=False, default=utcnow)
    status = Column(String(16), nullable=False)
    previous_status = Column(String(16))
    note = Column(Text)
    rating = Column(Integer)
    actor = Column(String(64), nullable=False)  # "resident", "staff:<name>", "system"
    notify = Column(Boolean, nullable=False, default=False)
    notified_at = Column(DateTime)

    request = relationship("Request", back_populates="events")


class Escalation(Base):
    """吹哨报到: a request escalated to a department with a note, by a grid worker or an admin.

    The department's time limit starts again at `at` (`due_at`); the request's history shows
    it as an event, and the dashboard counts escalations and how many were resolved in time.
    """

    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_at", "at"),)

    id = Column(Integer, primary_key=True)
    request_id = Column(Integer, ForeignKey("requests.id", ondelete="CASCADE"), nullable=False)
    at = Column(DateTime, nullable=False, default=utcnow)
    actor = Column(String(64), nullable=False)  # "staff:<name>"
    from_department_id = Column(String(48), nullable=False)
    to_department_id = Column(String(48), ForeignKey("departments.id"), nullable=False)
    note = Column(Text, nullable=False)
    due_at = Column(DateTime, nullable=False)  # the restarted time limit


class Attachment(Base):
    """A photo or voice note a resident sent with a request: the channel's file id and our copy."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_request", "request_id"),)

    id = Column(Integer, primary_key=True)
    request_id = Column(Integer, ForeignKey("requests.id", ondelete="CASCADE"), nullable=False)
    kind = Column(String(16), nullable=False)  # "photo" or "voice"
    channel = Column(String(32), nullable=False)
    file_id = Column(String(256), nullable=False)  # the channel's id, to fetch it again
    path = Column(String(400))  # our copy, relative to the data folder
    mime = Column(String(64))
    size = Column(Integer)
    duration = Column(Float)  # seconds, for voice notes
    created_at = Column(DateTime, nullable=False, default=utcnow)


# Outbox kinds queued outside a resident's turn, for many residents at once (bot/push.py): the
# resident's current step is shown again below them (Assistant.deliver_notifications).
NEWS_KINDS = frozenset({"notice", "poll-result", "alert"})
# Outbox priorities: the dispatcher sends a higher one first, whatever is queued before it.
NORMAL_PRIORITY = 0
ALERT_PRIORITY = 10


class OutboxMessage(Base):
    """One message for a resident's chat, kept until the channel has taken it.

    Replies, pushed status changes and notices are written here in the same transaction as the
    change that caused them, so a crash or a network failure loses nothing. `key`, when set, is
    a delivery key: the same key is never queued twice (a notice reaches a resident once).
    status: pending → sending → sent; failed (gave up, kept for staff); unconfirmed (the process
    died while the channel was sending it: not resent, so it never arrives twice).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_resident", "resident_id", "id"),
    )

    id = Column(Integer, primary_key=True)
    # Empty only for the reply to /forget: the resident is erased (with their other rows), the
    # row that tells them so belongs to nobody.
    resident_id = Column(Integer, ForeignKey("residents.id", ondelete="CASCADE"))
    channel = Column(String(32), nullable=False)
    chat_id = Column(String(128), nullable=False)
    key = Column(String(160), unique=True)
    kind = Column(String(32), nullable=False, default="reply")  # reply, push, notice, ...
    # Higher first (an area alert: ALERT_PRIORITY), then oldest first.
    priority = Column(Integer, nullable=False, default=0, server_default="0")
    payload = Column(JSON, nullable=False)  # a Reply as a dict, plus voice settings
    status = Column(String(12), nullable=False, default="pending")
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime, nullable=False, default=utcnow)
    last_error = Column(String(200))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)


class Notice(Base):
    """A policy notice: per language a title, a plain summary and the full text; one topic.

    `texts` maps a language id to {"title", "summary", "body"}; the default language is always
    there, others may be missing (the resident then reads the default language, with a note).
    """

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_published", "published_at"),)

    id = Column(Integer, primary_key=True)
    topic = Column(String(48), nullable=False)
    texts = Column(JSON, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    published_at = Column(DateTime)
    expires_at = Column(DateTime)
    source = Column(String(400))  # the file staff added it from


class NoticeSubscription(Base):
    """A resident wants new notices on one topic pushed to their chat."""

    __tablename__ = "notice_subscriptions"
    __table_args__ = (
        UniqueConstraint("resident_id", "topic", name="uq_notice_subscriptions_resident_topic"),
        Index("ix_notice_subscriptions_topic", "topic"),
    )

    id = Column(Integer, primary_key=True)
    resident_id = Column(Integer, ForeignKey("residents.id", ondelete="CASCADE"), nullable=False)
    topic = Column(String(48), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class Poll(Base):
    """A consultation (协商): a question, background and options per language, and its rules.

    `texts` maps a language id to {"question", "background"}; `options` is a list of
    {"id", "text": {language: label}}. `buildings` empty: every resident may vote; otherwise
    only residents whose profile names one of these buildings or areas.
    status: draft → open → closed.
    """

    __tablename__ = "polls"

    id = Column(Integer, primary_key=True)
    texts = Column(JSON, nullable=False)
    options = Column(JSON, nullable=False)
    buildings = Column(JSON, nullable=False, default=list)
    allow_change = Column(Boolean, nullable=False, default=False)
    status = Column(String(12), nullable=False, default="draft")
    opens_at = Column(DateTime)
    closes_at = Column(DateTime, nullable=False)
    opened_at = Column(DateTime)
    closed_at = Column(DateTime)
    eligible_count = Column(Integer)  # counted at closing, for the turnout
    # Option id -> votes, counted once at closing from the sealed ballots, which are then
    # deleted. Empty while the poll is open: no running count exists anywhere.
    tally = Column(JSON)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    source = Column(String(400))


class PollVoter(Base):
    """The voter roll: who has voted in a poll. Nothing here says what they chose.

    One row per voter and poll, enforced by the database (two unique keys). `voter` is a keyed
    digest (HMAC with the server secret, bot/keys.py) of the resident's channel and chat id,
    kept when /forget detaches the row from the resident, so that erasing one's data does not
    open a second ballot; without the secret it cannot be recomputed from a guess. status: "voted", or "changing"
    while a resident who presented their receipt chooses again (their old ballot is deleted).
    """

    __tablename__ = "poll_voters"
    __table_args__ = (
        UniqueConstraint("poll_id", "resident_id", name="uq_poll_voters_poll_resident"),
        UniqueConstraint("poll_id", "voter", name="uq_poll_voters_poll_voter"),
    )

    id = Column(Integer, primary_key=True)
    poll_id = Column(Integer, ForeignKey("polls.id", ondelete="CASCADE"), nullable=False)
    resident_id = Column(Integer, ForeignKey("residents.id", ondelete="SET NULL"))
    voter = Column(String(64), nullable=False)
    status = Column(String(12), nullable=False, default="voted")
    voted_on = Column(Date, nullable=False)  # the day only: not precise enough to match a ballot


class Ballot(Base):
    """A sealed choice of an open poll, with nothing that leads back to the voter.

    `sealed` is the option id padded to a fixed length and encrypted (AES-GCM, random nonce)
    under a key derived from the server secret for this poll (bot/keys.py): the database alone
    does not say what was chosen, whatever order the rows were written in. The key is random,
    there is no time, no column refers to a resident or to the roll. `receipt_hash` (polls
    that allow a change) is keyed with the server secret. At closing the ballots are counted
    into `Poll.tally` and deleted.
    """

    __tablename__ = "ballots"
    __table_args__ = (
        Index("ix_ballots_poll", "poll_id"),
        {"sqlite_with_rowid": False},
    )

    id = Column(String(32), primary_key=True)
    poll_id = Column(Integer, ForeignKey("polls.id", ondelete="CASCADE"), nullable=False)
    sealed = Column(LargeBinary, nullable=False)
    receipt_hash = Column(String(64), unique=True)


class PollOpinion(Base):
    """A written opinion in a consultation: no link to its writer, moderated before it is shown.

    `stance` is the option the writer said the opinion speaks for (or none): the writer's own
    choice to share, not read from their ballot. moderation: pending → approved or rejected.
    """

    __tablename__ = "poll_opinions"
    __table_args__ = (
        Index("ix_poll_opinions_poll", "poll_id"),
        {"sqlite_with_rowid": False},
    )

    id = Column(String(12), primary_key=True)
    poll_id = Column(Integer, ForeignKey("polls.id", ondelete="CASCADE"), nullable=False)
    language = Column(String(16), nullable=False)
    stance = Column(String(48))
    text = Column(Text, nullable=False)
    moderation = Column(String(12), nullable=False, default="pending")


class ChannelInbox(Base):
    """Updates a messenger handed over, kept until their turn is committed.

    Telegram forgets an update once the bot has fetched the next batch, which happens before
    the update's turn has run: a process killed in between would lose what the resident said.
    Each update is stored here first; the turn marks it processed in its own transaction, and
    a restart runs what was stored but not processed. The same id is never run twice. The
    payload (what the resident wrote) is wiped once processed; the id stays until Telegram
    has been told it may forget the update.
    With several workers a turn runs only once every older update of its chat has run
    (`bot.services.inbox.claim`), so a resident's turns keep their order.
    """

    __tablename__ = "channel_inbox"
    # Updates waiting (processed_at IS NULL), by chat, oldest first: the turn's order check,
    # the elected worker's look for updates a killed worker left.
    __table_args__ = (Index("ix_channel_inbox_waiting", "channel", "processed_at", "chat_id",
                            "update_id"),)

    channel = Column(String(32), primary_key=True)
    update_id = Column(BigInteger, primary_key=True, autoincrement=False)
    chat_id = Column(String(64))  # whose update it is (None: not a resident's chat)
    payload = Column(JSON)
    received_at = Column(DateTime, nullable=False, default=utcnow)
    processed_at = Column(DateTime)


class Volunteer(Base):
    """A resident who offers to help others of their grid (15分钟生活圈 volunteers).

    `skills` and `times` are lists of ids from bot/services/volunteers.py (SKILLS, TIMES);
    `withdrawn_at` set: they have withdrawn and get no more offers (the row stays, so that the
    requests they helped with still show who did).
    """

    __tablename__ = "volunteers"
    __table_args__ = (
        UniqueConstraint("resident_id", name="uq_volunteers_resident_id"),
        Index("ix_volunteers_grid", "grid_id"),
    )

    id = Column(Integer, primary_key=True)
    resident_id = Column(Integer, ForeignKey("residents.id", ondelete="CASCADE"), nullable=False)
    grid_id = Column(String(48), nullable=False)
    skills = Column(JSON, nullable=False, default=list)
    times = Column(JSON, nullable=False, default=list)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow)
    withdrawn_at = Column(DateTime)


class VolunteerOffer(Base):
    """An `elderly_help` request offered to one volunteer by the grid worker, and the answer.

    status: offered → accepted | declined | taken (they accepted after another volunteer had:
    told so). At most one offer per request is accepted (a partial unique index), and a
    request is offered to a volunteer once (a unique key). The volunteer is kept as None when
    they erased their data.
    """

    __tablename__ = "volunteer_offers"
    __table_args__ = (
        UniqueConstraint("request_id", "volunteer_id", name="uq_volunteer_offers_request_id"),
        Index("ix_volunteer_offers_volunteer", "volunteer_id", "status"),
        Index("uq_volunteer_offers_one_accepted", "request_id", unique=True,
              sqlite_where=text("status = 'accepted'"),
              postgresql_where=text("status = 'accepted'")),
    )

    id = Column(Integer, primary_key=True)
    request_id = Column(Integer, ForeignKey("requests.id", ondelete="CASCADE"), nullable=False)
    volunteer_id = Column(Integer, ForeignKey("volunteers.id", ondelete="SET NULL"))
    status = Column(String(12), nullable=False, default="offered")
    offered_by = Column(String(64), nullable=False)  # the staff account that offered it
    offered_at = Column(DateTime, nullable=False, default=utcnow)
    answered_at = Column(DateTime)


class Alert(Base):
    """An area alert (应急预警): text per language, severity, target area, check-on time.

    `texts` maps a language id to {"title", "body"} (the default language always there).
    Target: `grids` and `buildings` (bot.places.building_key) both empty means everyone.
    `check_after_minutes`: a resident flagged as living alone or elderly who has not answered
    by then is put on their grid's check list.
    """

    __tablename__ = "alerts"

    id = Column(Integer, primary_key=True)
    texts = Column(JSON, nullable=False)
    severity = Column(String(12), nullable=False)  # info, warning, danger
    grids = Column(JSON, nullable=False, default=list)
    buildings = Column(JSON, nullable=False, default=list)
    check_after_minutes = Column(Integer, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    created_by = Column(String(64), nullable=False)  # "cli" or "staff:<name>"
    sent_at = Column(DateTime)  # when its fan-out began; the check time counts from here
    source = Column(String(400))


class AlertRecipient(Base):
    """One resident an alert went to, and their answer ("safe" or "help") once given.

    Written in the fan-out's transaction with the outbox rows. `grid_id` and `building` are the
    resident's at that moment, for the grid's counts and check list. `check_reason` is set when
    they land on the check list: "help", or "no_answer" (flagged, silent past the check time).
    """

    __tablename__ = "alert_recipients"
    __table_args__ = (
        UniqueConstraint("alert_id", "resident_id", name="uq_alert_recipients_alert_resident"),
        Index("ix_alert_recipients_alert_grid", "alert_id", "grid_id"),
    )

    id = Column(Integer, primary_key=True)
    alert_id = Column(Integer, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False)
    resident_id = Column(Integer, ForeignKey("residents.id", ondelete="CASCADE"),
                         nullable=False)
    grid_id = Column(String(48))
    building = Column(String(64))
    answer = Column(String(8))
    answered_at = Column(DateTime)
    check_reason = Column(String(12))
    check_since = Column(DateTime)
