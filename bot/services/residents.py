"""Residents' own data: erasing it on request while keeping figures true."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.models import Attachment, Resident, Turn
from bot.services import nlu_examples
from bot.services import requests as request_service

log = logging.getLogger(__name__)


def forget(session: Session, resident: Resident, data_dir: Path) -> None:
    """Erases the profile and the conversation, and the resident's words wherever they went:
    requests lose description, place, photos and voice notes (open ones when they are finished,
    masked meanwhile), exported NLU examples are taken out of the export records and listed for
    removal from the training files. What stays is detached from the person."""
    request_service.forget_requests(session, resident, data_dir)
    turns = list(session.execute(select(Turn.id, Turn.kind, Turn.payload)
                                 .where(Turn.resident_id == resident.id)).all())
    listed = nlu_examples.forget_exported(session, [turn.id for turn in turns])
    if listed:
        log.warning("a resident erased their data: %d exported NLU example(s) are listed for "
                    "removal on the console's NLU page", listed)
    # Photos and voice notes sent outside a request (to staff, or a report left unfinished);
    # those of requests still open stay with the request until it is finished.
    kept = set(session.execute(select(Attachment.path).where(Attachment.path.isnot(None)))
               .scalars())
    for turn in turns:
        if turn.kind in ("photo", "voice") and turn.payload and turn.payload not in kept:
            request_service.delete_media(data_dir, turn.payload)
    session.execute(delete(Turn).where(Turn.resident_id == resident.id))
    session.delete(resident)
    session.flush()
