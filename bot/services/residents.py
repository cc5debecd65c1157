"""Residents' own data: erasing it on request while keeping figures true."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from bot.models import Request, Resident, Turn


def forget(session: Session, resident: Resident) -> None:
    """Erases the profile and the conversation; requests stay, detached from the person."""
    session.execute(
        update(Request).where(Request.resident_id == resident.id).values(resident_id=None)
    )
    session.execute(delete(Turn).where(Turn.resident_id == resident.id))
    session.delete(resident)
    session.flush()
