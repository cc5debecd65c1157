"""Tells a resident who asked for voice, once per message, that it has no recording yet."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Config
from bot.models import OutboxMessage, Resident
from bot.voice import clip_id, clip_path, clips_only, recorded_clips

# The key of a turn that is not one fixed message (a summary, several messages): never a clip.
NOT_FIXED = "*"


def voice_entry(session: Session, config: Config, t, resident: Resident, payload: dict) -> dict:
    """The turn's voice outbox entry, with the note the channel sends if it finds no audio.

    For a language that only recorded clips speak (mn, bo): a message with a clip goes as it
    is (the channel plays the clip). For a message without one, the note says "this message
    has no recording yet" the first time this resident meets it, and is empty after that (the
    channel then sends nothing), so a resident does not hear the same apology every turn. The
    entry is queued all the same: the console counts what was heard from it, and a clip
    recorded in the meantime is played. A turn that is not one fixed message can never have
    a clip: the resident is told that once."""
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
        note = ""
    elif clip:
        note = t("There is no recording of this message yet, so it is in text only.")
    else:
        note = t("Answers like this one are not recorded, so they are in text only.")
    return {**payload, "missing": missing, "note": note}


def voice_offered(config: Config, language: str) -> bool:
    """Whether onboarding offers voice: some engine speaks the language, or a clip exists."""
    if not clips_only(config, language):
        return True
    return bool(recorded_clips(config.voice.clips_dir, language))
