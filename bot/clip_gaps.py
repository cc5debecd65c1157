"""Tells a resident who asked for voice, once per message, that it has no recording yet."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Config
from bot.models import OutboxMessage, Resident
from bot.voice import clip_id, clip_path, clips_only, recorded_clips

# The key of a turn that is not one fixed message (a summary, several messages): never a clip.
NOT_FIXED = "*"


def voice_entry(session: Session, config: Config, t, resident: Resident,
                payload: dict) -> dict | None:
    """The turn's voice outbox entry, or None when there is nothing to send.

    For a language that only recorded clips speak (mn, bo): a message with a clip is sent as
    it is (the channel plays the clip). A message without one is sent once per resident as
    "this message has no recording yet" (the channel sends the note when it finds no audio),
    and after that not at all, so a resident does not hear the same apology every turn. A turn
    that is not one fixed message can never have a clip: the resident is told that once."""
    language = payload["language"]
    if not clips_only(config, language):
        return payload
    source = payload.get("source")
    clip = clip_id(source) if source else None
    if clip and clip_path(config.voice.clips_dir, language, clip):
        return payload
    missing = f"{language}/{clip or NOT_FIXED}"
    told = session.execute(
        select(OutboxMessage.id).where(
            OutboxMessage.resident_id == resident.id,
            OutboxMessage.payload["missing"].as_string() == missing).limit(1)).first()
    if told:
        return None
    note = (t("There is no recording of this message yet, so it is in text only.") if clip
            else t("Answers like this one are not recorded, so they are in text only."))
    return {**payload, "missing": missing, "note": note}


def voice_offered(config: Config, language: str) -> bool:
    """Whether onboarding offers voice: some engine speaks the language, or a clip exists."""
    if not clips_only(config, language):
        return True
    return bool(recorded_clips(config.voice.clips_dir, language))
