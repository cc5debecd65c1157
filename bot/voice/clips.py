"""Recorded clips: which exist, where, and encoding one, for the console's clip page and the
"no recording yet" note (bot/clip_gaps.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from bot.config import Config
from bot.voice.engines import _to_opus
from bot.voice.speaker import CLIP_SUFFIXES

_CLIP_ID = re.compile(r"[a-z0-9-]{1,60}")


def clip_path(clips_dir: Path, language: str, clip: str) -> Path | None:
    """The recording the clip engine would play for this message and language, if any."""
    if not _CLIP_ID.fullmatch(clip):
        return None
    for suffix in CLIP_SUFFIXES:
        path = Path(clips_dir) / language / f"{clip}{suffix}"
        if path.is_file():
            return path
    return None


def recorded_clips(clips_dir: Path, language: str) -> set[str]:
    """The clip ids that have a recording for a language."""
    folder = Path(clips_dir) / language
    if not folder.is_dir():
        return set()
    return {path.stem for path in folder.iterdir()
            if path.suffix in CLIP_SUFFIXES and path.is_file() and _CLIP_ID.fullmatch(path.stem)}


def clips_only(config: Config, language: str) -> bool:
    """Whether only recorded clips can speak this language (no engine in its chain)."""
    return all(name == "clip" for name in config.voice.engines.get(language, ("clip",)))


def encode_opus(samples: np.ndarray, rate: int) -> tuple[bytes, float]:
    """OGG/Opus at 48 kHz (how clips are stored and sent) and its seconds, from samples."""
    return _to_opus(samples, rate)
