"""SQLAlchemy tables: residents, conversation turns, departments, categories, requests, events."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
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
    flow = Column(String(64))
    step = Column(String(64))
    slots = Column(JSON, nullable=False, default=dict)
    offered = Column(JSON, nullable=False, default=list)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_seen_at = Column(DateTime, nullable=False, default=utcnow)


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
    )

    id = Column(Integer, primary_key=True)
    tracking_number = Column(String(24), nullable=False, unique=True)
    resident_id = Column(Integer, ForeignKey("residents.id", ondelete="SET NULL"))
    category_id = Column(String(48), ForeignKey("categories.id"), nullable=False)
    department_id = Column(String(48), ForeignKey("departments.id"), nullable=False)
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
    resident_id = Column(Integer, ForeignKey("residents.id", ondelete="CASCADE"), nullable=False)
    channel = Column(String(32), nullable=False)
    chat_id = Column(String(128), nullable=False)
    key = Column(String(160), unique=True)
    kind = Column(String(32), nullable=False, default="reply")  # reply, push, notice, ...
    payload = Column(JSON, nullable=False)  # a Reply as a dict, plus voice settings
    status = Column(String(12), nullable=False, default="pending")
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime, nullable=False, default=utcnow)
    last_error = Column(String(200))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)
