"""Turns a reply's text into audio: per-language engine chains (clips, gTTS, espeak-ng), cached."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import unicodedata
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import soundfile
from babel.messages.pofile import read_po
from gtts import gTTS, gTTSError
from scipy.signal import resample_poly

from bot.config import VOICE_SCRIPTS, Config

log = logging.getLogger(__name__)

GOOGLE_TRANSLATE_URL = "https://translate.google.com"
ESPEAK_WORDS_PER_MINUTE = {False: 175, True: 130}  # slow=True for senior residents
OPUS_SAMPLE_RATE = 48_000  # what Telegram's own voice notes use
CLIP_SUFFIXES = (".ogg", ".oga", ".mp3", ".wav")
MIME_TYPES = {".ogg": "audio/ogg", ".oga": "audio/ogg", ".mp3": "audio/mpeg"}
CLIP_ID_MAX = 60

# Formatting characters a voice cannot say: bidi marks, embeddings and isolates, zero-width
# characters, soft hyphen and byte-order mark. Emoji and other symbols are dropped by category.
UNSPEAKABLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufe00-\ufe0f\ufeff]")
SENTENCE_END = re.compile(r"[.!?。！？؟]")

# Unicode blocks of the scripts named in config.VOICE_SCRIPTS (the letters of any other block
# count as "Other", which no voice reads). Sorted by start for bisect.
_SCRIPT_BLOCKS = sorted([
    (0x0041, 0x005A, "Latin"), (0x0061, 0x007A, "Latin"), (0x00AA, 0x00AA, "Latin"),
    (0x00BA, 0x00BA, "Latin"), (0x00C0, 0x02AF, "Latin"), (0x1E00, 0x1EFF, "Latin"),
    (0x2C60, 0x2C7F, "Latin"), (0xA720, 0xA7FF, "Latin"), (0xFF21, 0xFF3A, "Latin"),
    (0xFF41, 0xFF5A, "Latin"),
    (0x0370, 0x03FF, "Greek"), (0x1F00, 0x1FFF, "Greek"),
    (0x0400, 0x052F, "Cyrillic"), (0x1C80, 0x1C8F, "Cyrillic"), (0x2DE0, 0x2DFF, "Cyrillic"),
    (0xA640, 0xA69F, "Cyrillic"),
    (0x0600, 0x06FF, "Arabic"), (0x0750, 0x077F, "Arabic"), (0x08A0, 0x08FF, "Arabic"),
    (0xFB50, 0xFDFF, "Arabic"), (0xFE70, 0xFEFF, "Arabic"),
    (0x0F00, 0x0FFF, "Tibetan"),
    (0x1800, 0x18AF, "Mongolian"), (0x11660, 0x1167F, "Mongolian"),
    (0x2E80, 0x2FDF, "Han"), (0x3005, 0x3007, "Han"), (0x3021, 0x3029, "Han"),
    (0x3038, 0x303B, "Han"), (0x3400, 0x4DBF, "Han"), (0x4E00, 0x9FFF, "Han"),
    (0xF900, 0xFAFF, "Han"), (0x20000, 0x3134F, "Han"),
])
_BLOCK_STARTS = [start for start, _, _ in _SCRIPT_BLOCKS]


@dataclass(frozen=True)
class Audio:
    """A spoken reply: the file's bytes and what a channel needs to send it as a voice note."""

    data: bytes
    mime: str  # "audio/ogg" (OGG/Opus) or "audio/mpeg" (MP3)
    duration: float  # seconds
    engine: str  # "clip", "gtts:zh-CN", "espeak:ug", …
    language: str
    cached: bool


class EngineFailed(Exception):
    """An engine could not speak this time; the message never contains the text."""


def script_of(char: str) -> str | None:
    """The script of a letter ("Han", "Latin", "Other", …); None for what every voice can say
    (digits 0-9, punctuation, spaces, combining accents)."""
    category = unicodedata.category(char)
    if category[0] not in "LMN" or "0" <= char <= "9" or "\u0300" <= char <= "\u036f":
        return None
    code = ord(char)
    i = bisect_right(_BLOCK_STARTS, code) - 1
    if i >= 0 and code <= _SCRIPT_BLOCKS[i][1]:
        return _SCRIPT_BLOCKS[i][2]
    return None if category[0] == "N" else "Other"


def scripts_in(text: str) -> Counter[str]:
    """How many letters of each script the text has."""
    return Counter(script for script in map(script_of, text) if script)


def can_read(scripts: tuple[str, ...], text: str) -> bool:
    """Whether a voice reading `scripts` can say `text`: most letters in scripts[0], none in a
    script outside `scripts`. Text without letters (digits, punctuation) is readable by all."""
    counts = scripts_in(text)
    if not counts:
        return True
    if any(script not in scripts for script in counts):
        return False
    return counts.most_common(1)[0][0] == scripts[0]


def speakable(text: str, max_characters: int) -> str:
    """The text as a voice should get it: no formatting characters or symbols, a full stop
    after a line without one (a pause, where espeak-ng would run the lines together), spaces
    collapsed, cut at a sentence end (or a space) before `max_characters`."""
    text = UNSPEAKABLE.sub("", unicodedata.normalize("NFC", text))
    text = "".join(
        ch for ch in text
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs", "Cn", "So", "Sk")
    )
    lines = [" ".join(line.split()) for line in text.split("\n")]
    text = " ".join(
        line if unicodedata.category(line[-1]).startswith("P") else f"{line}."
        for line in lines if line
    )
    if len(text) <= max_characters:
        return text
    cut = text[:max_characters]
    ends = [m.end() for m in SENTENCE_END.finditer(cut)]
    if ends and ends[-1] > max_characters // 2:
        return cut[: ends[-1]].strip()
    space = cut.rfind(" ")
    return (cut[:space] if space > max_characters // 2 else cut).strip()


def clip_id(msgid: str) -> str:
    """A stable file name for a message's recording: its ASCII words in lower case joined by
    "-", at most 60 characters; a long or non-ASCII message ends in a hash of the whole msgid."""
    ascii_text = unicodedata.normalize("NFKD", msgid).encode("ascii", "ignore").decode()
    slug = "-".join(re.findall(r"[a-z0-9]+", ascii_text.lower()))
    digest = hashlib.sha1(msgid.encode("utf-8")).hexdigest()[:8]
    if not slug:
        return f"msg-{digest}"
    if len(slug) <= CLIP_ID_MAX:
        return slug
    head = slug[: CLIP_ID_MAX - len(digest) - 1]
    if slug[len(head)] != "-" and "-" in head:
        head = head[: head.rfind("-")]
    return f"{head.rstrip('-')}-{digest}"


def expected_clips(pot_path: Path) -> list[tuple[str, str]]:
    """(clip id, msgid) for every message of the template that can have a recording: messages
    with {fields} or plural forms change with each reply, so they are spoken by an engine.

    Raises ValueError if two messages would share a clip file name."""
    with Path(pot_path).open("rb") as f:
        catalog = read_po(f)
    clips: dict[str, str] = {}
    for message in catalog:
        if not message.id or not isinstance(message.id, str):
            continue
        if re.search(r"\{[A-Za-z_]\w*\}", message.id):
            continue
        name = clip_id(message.id)
        if name in clips and clips[name] != message.id:
            raise ValueError(
                f"{pot_path}: {clips[name]!r} and {message.id!r} share the clip name {name!r}"
            )
        clips[name] = message.id
    return sorted(clips.items())


def _decoded_duration(data: bytes) -> float:
    """Seconds of audio in an OGG, MP3 or WAV file; raises if it is not audio at all."""
    info = soundfile.info(io.BytesIO(data))
    return info.frames / info.samplerate if info.samplerate else 0.0


def _to_opus(samples: np.ndarray, rate: int) -> tuple[bytes, float]:
    """OGG/Opus at 48 kHz from samples at any rate."""
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    if rate != OPUS_SAMPLE_RATE:
        common = gcd(rate, OPUS_SAMPLE_RATE)
        samples = resample_poly(samples, OPUS_SAMPLE_RATE // common, rate // common)
    samples = np.clip(samples, -1.0, 1.0).astype(np.float32)
    out = io.BytesIO()
    soundfile.write(out, samples, OPUS_SAMPLE_RATE, format="OGG", subtype="OPUS")
    return out.getvalue(), len(samples) / OPUS_SAMPLE_RATE


class Engine(ABC):
    """A speech synthesiser for one voice. Subclasses fill in `synthesize`."""

    mime = "audio/ogg"
    suffix = ".ogg"

    def __init__(self, name: str):
        self.name = name
        self.scripts = VOICE_SCRIPTS[name]

    def reads(self, text: str) -> bool:
        return can_read(self.scripts, text)

    def available(self) -> bool:
        return True

    def speed(self, slow: bool) -> str:
        """The speed setting as it goes into the cache key."""
        return "slow" if slow else "normal"

    @abstractmethod
    def synthesize(self, text: str, slow: bool) -> tuple[bytes, float]:
        """(audio file bytes, seconds). Raises EngineFailed."""


class _RedirectedGtts(gTTS):
    """gTTS that sends its requests to `base_url` instead of https://translate.google.<tld>.

    gTTS has no option for the host, so this rewrites the URL of the requests it prepares
    (gTTS._prepare_requests, gTTS 2.5); the path and the form stay gTTS's own."""

    def __init__(self, text: str, *, base_url: str, **kwargs):
        super().__init__(text, **kwargs)
        self._base = urlsplit(base_url.rstrip("/"))

    def _prepare_requests(self):
        prepared = super()._prepare_requests()
        for request in prepared:
            url = urlsplit(request.url)
            request.prepare_url(
                urlunsplit((self._base.scheme, self._base.netloc, self._base.path + url.path,
                            url.query, "")), None,
            )
        return prepared


class Service:
    """An online service shared by several engines: after a failure of any of them, all rest
    for `retry_after` seconds, so an outage costs one timeout, not one per reply."""

    def __init__(self, url: str, retry_after: float = 120.0):
        self.url = url
        self.retry_after = retry_after
        self._resting_until = 0.0

    def failed(self) -> None:
        self._resting_until = time.monotonic() + self.retry_after

    def resting(self) -> bool:
        return time.monotonic() < self._resting_until


class GttsEngine(Engine):
    """Google Translate's voices through gTTS (online; MP3)."""

    mime = "audio/mpeg"
    suffix = ".mp3"

    def __init__(self, language_code: str, *, url: str = GOOGLE_TRANSLATE_URL,
                 timeout: float = 3.0, service: Service | None = None):
        super().__init__(f"gtts:{language_code}")
        self.language_code = language_code
        self.service = service or Service(url)
        self.timeout = timeout

    def available(self) -> bool:
        return not self.service.resting()

    def synthesize(self, text: str, slow: bool) -> tuple[bytes, float]:
        out = io.BytesIO()
        try:
            _RedirectedGtts(text, base_url=self.service.url, lang=self.language_code, slow=slow,
                            lang_check=False,  # config.py checked it; this skips a warning
                            timeout=self.timeout).write_to_fp(out)
            return out.getvalue(), _decoded_duration(out.getvalue())
        except gTTSError as exc:  # its message names the HTTP status, never the text
            reason = str(exc)
        except (RuntimeError, AssertionError, TypeError) as exc:  # no audio in the answer
            reason = f"the answer is not audio ({type(exc).__name__})"
        self.service.failed()
        raise EngineFailed(reason)


class EspeakEngine(Engine):
    """espeak-ng (offline): WAV from the program, resampled to 48 kHz, as OGG/Opus."""

    def __init__(self, voice: str, *, binary: str = "espeak-ng"):
        super().__init__(f"espeak:{voice}")
        self.voice = voice
        self.binary = shutil.which(binary)
        if self.binary is None:
            log.warning("voice: %s is not installed; %s is unavailable", binary, self.name)

    def available(self) -> bool:
        return self.binary is not None

    def speed(self, slow: bool) -> str:
        return f"{ESPEAK_WORDS_PER_MINUTE[slow]}wpm"

    def synthesize(self, text: str, slow: bool) -> tuple[bytes, float]:
        command = [self.binary, "-b", "1", "-v", self.voice,
                   "-s", str(ESPEAK_WORDS_PER_MINUTE[slow]), "--stdout"]
        try:
            done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True,
                                  timeout=60, check=False)
        except FileNotFoundError:
            self.binary = None
            raise EngineFailed("espeak-ng has gone missing") from None
        except subprocess.TimeoutExpired:
            raise EngineFailed("espeak-ng took over 60 s") from None
        if done.returncode != 0 or not done.stdout:
            raise EngineFailed(f"espeak-ng exited with {done.returncode}")
        try:
            samples, rate = soundfile.read(io.BytesIO(done.stdout), dtype="float32")
        except RuntimeError:  # soundfile's errors
            raise EngineFailed("espeak-ng wrote no readable WAV") from None
        if len(samples) == 0:
            raise EngineFailed("espeak-ng wrote no sound")
        return _to_opus(samples, rate)


class Voice:
    """Speaks replies in each language with the engines config.yml lists for it, in order."""

    def __init__(self, config: Config, *, gtts_url: str = GOOGLE_TRANSLATE_URL,
                 espeak_binary: str = "espeak-ng"):
        settings = config.voice
        self.cache_dir = settings.cache_dir
        self.clips_dir = settings.clips_dir
        self.max_characters = settings.max_characters
        google = Service(gtts_url)
        engines: dict[str, Engine] = {}
        for name in {name for chain in settings.engines.values() for name in chain}:
            kind, _, voice = name.partition(":")
            if kind == "gtts":
                engines[name] = GttsEngine(voice, service=google,
                                           timeout=settings.gtts_timeout_seconds)
            elif kind == "espeak":
                engines[name] = EspeakEngine(voice, binary=espeak_binary)
        self._chains = {lang: [engines.get(name, name) for name in chain]
                        for lang, chain in settings.engines.items()}

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
            return Audio(data, engine.mime, _decoded_duration(data), engine.name, language,
                         cached=True)
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
        except OSError as exc:
            log.warning("voice: could not cache audio in %s (%s)", path.parent,
                        type(exc).__name__)
            if part is not None:
                Path(part.name).unlink(missing_ok=True)


# --- recorded clips, for the console's clip page and the "no recording yet" note -----------
def clip_path(clips_dir: Path, language: str, clip: str) -> Path | None:
    """The recording the clip engine would play for this message and language, if any."""
    if not re.fullmatch(r"[a-z0-9-]{1,60}", clip):
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
            if path.suffix in CLIP_SUFFIXES and path.is_file()
            and re.fullmatch(r"[a-z0-9-]{1,60}", path.stem)}


def clips_only(config: Config, language: str) -> bool:
    """Whether only recorded clips can speak this language (no engine in its chain)."""
    return all(name == "clip" for name in config.voice.engines.get(language, ("clip",)))


def encode_opus(samples: np.ndarray, rate: int) -> tuple[bytes, float]:
    """OGG/Opus at 48 kHz (how clips are stored and sent) and its seconds, from samples."""
    return _to_opus(samples, rate)
