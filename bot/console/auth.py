"""Staff accounts: argon2 passwords, roles, login throttling, the session secret, the audit log."""

from __future__ import annotations

import functools
import logging
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.console.models import AuditEntry, LoginAttempt, StaffUser
from bot.keys import secret_key  # noqa: F401  (moved to bot/keys.py: it keys ballots too)
from bot.models import utcnow

log = logging.getLogger(__name__)

ROLES = ("viewer", "staff", "admin")  # each may do what the ones before it may
STAFF_LANGUAGES = ("zh_Hans", "en")  # the console's own page languages (bot/console/i18n.py)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 200
# Throttling: this many failures for one name from one address in the window blocks that pair;
# an address with IP_FAILURES failures in the window is blocked for every name.
NAME_IP_FAILURES = 5
IP_FAILURES = 20
WINDOW = timedelta(minutes=15)

COMMON_PASSWORDS = Path(__file__).resolve().parent / "common-passwords.txt"

_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(Exception):
    """A staff account that cannot be created or changed as asked; the message says why.

    `template` and `values` let the console show the message in the page's language."""

    def __init__(self, template: str, **values: object):
        super().__init__(template.format(**values) if values else template)
        self.template, self.values = template, values


class Throttled(Exception):
    """Too many failed logins for this name and address (or this address): wait."""


def role_allows(role: str, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def add_user(session: Session, name: str, password: str, role: str, language: str,
             actor: str = "cli") -> StaffUser:
    """Creates an account; the password is kept only as an argon2 hash."""
    name = name.strip().lower()
    if not NAME_PATTERN.match(name):
        raise AccountError("a name is 2 to 32 lower-case letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; one of: {', '.join(ROLES)}")
    if language not in STAFF_LANGUAGES:
        raise AccountError(f"unknown page language {language!r}; one of: "
                           f"{', '.join(STAFF_LANGUAGES)}")
    check_password(name, password)
    if session.execute(select(StaffUser.id).where(StaffUser.name == name)).first():
        raise AccountError(f"there is already an account named {name!r}")
    user = StaffUser(name=name, password_hash=_hasher.hash(password), role=role,
                     language=language, active=True, session_epoch=0, created_at=utcnow())
    session.add(user)
    session.flush()
    audit(session, actor, "staff.add_user", name, {"role": role})
    return user


@functools.cache
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines
                     if line.strip() and not line.startswith("#"))


def check_password(name: str, password: str) -> None:
    """Raises AccountError unless the password is long enough, is not the account's name and
    is not a common password (bot/console/common-passwords.txt), even with digits or signs
    added at its end ("password2024!")."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError("a password has {low} to {high} characters", low=MIN_PASSWORD,
                           high=MAX_PASSWORD)
    folded = password.strip().casefold()
    base = folded.rstrip("0123456789!@#$%^&*.?_-+ ")
    if name.strip().casefold() in (folded, base):
        raise AccountError("a password must not be the account's name")
    common = _common_passwords()
    if folded in common or (len(base) >= 4 and base in common) or len(set(folded)) < 4:
        raise AccountError("that password is too common or too simple: choose another "
                           "(a few unrelated words work well)")


def set_active(session: Session, name: str, active: bool, actor: str) -> StaffUser:
    """Disables (every session of it ends at once) or enables an account. The last active
    admin cannot be disabled: someone must be able to enable the others again."""
    user = find_user(session, name)
    if user is None:
        raise AccountError("there is no account named {name}", name=name.strip().lower())
    if not active and user.active and user.role == "admin" and session.execute(
            select(func.count(StaffUser.id)).where(StaffUser.role == "admin",
                                                   StaffUser.active.is_(True))
    ).scalar_one() <= 1:
        raise AccountError("the last active admin cannot be disabled")
    if user.active != active:
        user.active = active
        if not active:
            user.session_epoch += 1
        audit(session, actor, "staff.enable" if active else "staff.disable", user.name)
    return user


def reset_password(session: Session, name: str, password: str, actor: str) -> StaffUser:
    """Sets a new password; every session of the account ends (log in again with it)."""
    user = find_user(session, name)
    if user is None:
        raise AccountError("there is no account named {name}", name=name.strip().lower())
    check_password(user.name, password)
    user.password_hash = _hasher.hash(password)
    user.session_epoch += 1
    audit(session, actor, "staff.reset_password", user.name)
    return user


def find_user(session: Session, name: str) -> StaffUser | None:
    return session.execute(
        select(StaffUser).where(StaffUser.name == name.strip().lower())
    ).scalar_one_or_none()


def is_throttled(session: Session, name: str, ip: str, now: datetime | None = None) -> bool:
    """Counts failures in the window, since the last success for this name and address."""
    now = now or utcnow()
    since = now - WINDOW
    last_success = session.execute(
        select(func.max(LoginAttempt.at)).where(
            LoginAttempt.name == name, LoginAttempt.ip == ip, LoginAttempt.succeeded.is_(True),
            LoginAttempt.at >= since)
    ).scalar_one()
    pair_since = max(since, last_success) if last_success else since
    pair = session.execute(
        select(func.count(LoginAttempt.id)).where(
            LoginAttempt.name == name, LoginAttempt.ip == ip,
            LoginAttempt.succeeded.is_(False), LoginAttempt.at >= pair_since)
    ).scalar_one()
    if pair >= NAME_IP_FAILURES:
        return True
    from_ip = session.execute(
        select(func.count(LoginAttempt.id)).where(
            LoginAttempt.ip == ip, LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since)
    ).scalar_one()
    return from_ip >= IP_FAILURES


def authenticate(session: Session, name: str, password: str, ip: str) -> StaffUser | None:
    """The account if the password is right; None if not. Raises Throttled before checking.

    Every try is recorded (name and address, never the password), in this transaction.
    """
    name = name.strip().lower()[:64]
    ip = (ip or "unknown")[:64]
    if is_throttled(session, name, ip):
        raise Throttled(name)
    user = find_user(session, name) if name else None
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        ok = False
    ok = ok and user is not None and user.active
    session.add(LoginAttempt(at=utcnow(), name=name, ip=ip, succeeded=ok))
    if not ok:
        log.info("console login refused for a name from %s", ip)
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    audit(session, user.name, "login", None, {"ip": ip})
    return user


def audit(session: Session, actor: str, action: str, target: str | None,
          detail: dict | None = None) -> AuditEntry:
    """Writes one audit entry in the caller's transaction: it stands or falls with the change."""
    entry = AuditEntry(at=utcnow(), actor=actor[:80], action=action, target=target,
                       detail=detail)
    session.add(entry)
    return entry
