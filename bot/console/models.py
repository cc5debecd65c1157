"""The staff console's tables: staff accounts, audit log, login attempts, NLU labels, exports."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)

from bot.models import Base, utcnow


class StaffUser(Base):
    """A member of staff who may log in to the console, with one role and a page language.

    `session_epoch` is written into each login's cookie; logging out raises it, which ends
    every session of that account (cookies are signed, not stored, so this is how they end).
    """

    __tablename__ = "staff_users"

    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False, unique=True)
    password_hash = Column(String(256), nullable=False)
    role = Column(String(16), nullable=False)  # admin, staff, viewer
    language = Column(String(16), nullable=False)
    active = Column(Boolean, nullable=False, default=True)
    session_epoch = Column(Integer, nullable=False, default=0)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_login_at = Column(DateTime)


class AuditEntry(Base):
    """Who did what, when: every change made in the console (and logins), for admins to read.

    `detail` names what changed (statuses, ids, counts); never a resident's message text.
    """

    __tablename__ = "staff_audit_log"
    __table_args__ = (Index("ix_staff_audit_log_at", "at"),)

    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow)
    actor = Column(String(80), nullable=False)  # a staff name, "cli", or "open311:<key digest>"
    action = Column(String(48), nullable=False)
    target = Column(String(120))
    detail = Column(JSON)


class LoginAttempt(Base):
    """One try at logging in, kept so that throttling survives a restart."""

    __tablename__ = "staff_login_attempts"
    __table_args__ = (
        Index("ix_staff_login_attempts_name_ip", "name", "ip", "at"),
        Index("ix_staff_login_attempts_ip", "ip", "at"),
    )

    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow)
    name = Column(String(64), nullable=False)
    ip = Column(String(64), nullable=False)
    succeeded = Column(Boolean, nullable=False)


class NluExport(Base):
    """One export of labelled examples into the training files, with the diff it made."""

    __tablename__ = "nlu_exports"

    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow)
    actor = Column(String(80), nullable=False)
    examples = Column(Integer, nullable=False)
    files = Column(JSON, nullable=False)  # file names written
    diff = Column(Text, nullable=False)


class NluLabel(Base):
    """Staff's verdict on an inbox turn: the right intent and the example to train on.

    `intent` None: dismissed (not a useful example). Deleted with its turn, so a resident's
    /forget also removes examples not yet exported. `export_id` is set once exported, so a
    turn is never exported twice.
    """

    __tablename__ = "nlu_labels"
    __table_args__ = (Index("ix_nlu_labels_export", "export_id"),)

    id = Column(Integer, primary_key=True)
    turn_id = Column(Integer, ForeignKey("turns.id", ondelete="CASCADE"), nullable=False,
                     unique=True)
    language = Column(String(16), nullable=False)
    intent = Column(String(64))
    example = Column(Text)  # one line in Rasa's annotation syntax: 3号楼[电梯](category)坏了
    labelled_by = Column(String(64), nullable=False)
    labelled_at = Column(DateTime, nullable=False, default=utcnow)
    export_id = Column(Integer, ForeignKey("nlu_exports.id", ondelete="SET NULL"))
    exported_at = Column(DateTime)


class NluRemoval(Base):
    """An exported example whose writer erased their data (/forget): to be taken out of
    nlu/<language>.yml by staff. Only a digest of the example is kept, never its words; the
    NLU page finds the line in the file by it, and the row goes once the line is gone."""

    __tablename__ = "nlu_removals"

    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow)
    language = Column(String(16), nullable=False)
    intent = Column(String(64), nullable=False)
    example_hash = Column(String(64), nullable=False)  # sha256 of the example line's text
    export_id = Column(Integer, ForeignKey("nlu_exports.id", ondelete="SET NULL"))


class StaffLinkCode(Base):
    """A one-time code a grid worker sends to the bot (`/link CODE`) to link their staff
    account to that chat. Only a keyed digest of the code is stored (bot/keys.py's secret);
    valid for ten minutes, used once."""

    __tablename__ = "staff_link_codes"
    __table_args__ = (Index("ix_staff_link_codes_staff", "staff_user_id"),)

    id = Column(Integer, primary_key=True)
    staff_user_id = Column(Integer, ForeignKey("staff_users.id", ondelete="CASCADE"),
                           nullable=False)
    code_hash = Column(String(64), nullable=False, unique=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    used_at = Column(DateTime)


class StaffLink(Base):
    """A staff account linked to a messenger chat: urgent requests of the worker's grids are
    pushed there through the outbox. One chat per account; the chat's resident row (the bot
    knows every chat as a resident) carries the channel and chat id, and /forget unlinks."""

    __tablename__ = "staff_links"

    id = Column(Integer, primary_key=True)
    staff_user_id = Column(Integer, ForeignKey("staff_users.id", ondelete="CASCADE"),
                           nullable=False, unique=True)
    resident_id = Column(Integer, ForeignKey("residents.id", ondelete="CASCADE"),
                         nullable=False)
    linked_at = Column(DateTime, nullable=False, default=utcnow)
