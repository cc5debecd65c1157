"""Console page for recorded voice clips: what residents heard, recording, coverage (a mixin)."""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import numpy as np
import soundfile
from sqlalchemy import func, select
from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse, RedirectResponse, Response

from bot.config import Config
from bot.console import auth
from bot.console.i18n import StaffTranslator
from bot.models import OutboxMessage, utcnow
from bot.voice import (
    CLIP_SUFFIXES,
    MIME_TYPES,
    clip_path,
    clips_only,
    encode_opus,
    expected_clips,
    recorded_clips,
)

log = logging.getLogger(__name__)

HEARD_DAYS = 30
MAX_CLIP_SECONDS = 60.0
SILENCE = 1e-3  # a peak below this is a muted microphone, not a recording
UPLOAD_SUFFIXES = (".ogg", ".oga", ".opus", ".mp3", ".wav", ".webm")


class ClipError(Exception):
    """An upload that cannot become a clip; the message (staff's language) says why."""


@dataclass(frozen=True)
class ClipRow:
    """One fixed message of a language on the clip page."""

    clip: str
    msgid: str
    text: str  # the translation a clip must say
    heard: int  # voice replies that were this message alone, in the last HEARD_DAYS days
    shown: int  # text replies that were this message, in the last HEARD_DAYS days
    recorded: bool


@dataclass(frozen=True)
class Coverage:
    """How much of what residents of one language heard (or were shown) has a recording."""

    language: str
    heard: int
    heard_recorded: int
    shown: int
    shown_recorded: int
    unfixed: int  # voice replies that were not one fixed message: never a clip
    recorded: int  # clips recorded for this language
    expected: int  # messages that can have a clip

    @property
    def heard_percent(self) -> int | None:
        return round(100 * self.heard_recorded / self.heard) if self.heard else None

    @property
    def shown_percent(self) -> int | None:
        return round(100 * self.shown_recorded / self.shown) if self.shown else None


@lru_cache(maxsize=4)
def _expected(pot_path: Path, stamp: float) -> tuple[tuple[str, str], ...]:
    return tuple(expected_clips(pot_path))


def fixed_messages(config: Config) -> list[tuple[str, str]]:
    """(clip id, msgid) of every message that can have a clip (locales/messages.pot)."""
    pot = config.locales_dir / "messages.pot"
    return list(_expected(pot, pot.stat().st_mtime))


def outbox_counts(session, since) -> tuple[dict, dict, Counter]:
    """Per language, how often each fixed message was heard (voice rows) and shown (text rows)
    since `since`, from the outbox; and how many voice rows per language were not one fixed
    message. Failed rows never reached the resident and do not count."""
    language = OutboxMessage.payload["language"].as_string()
    source = OutboxMessage.payload["source"].as_string()
    voice = OutboxMessage.payload["voice"].as_boolean()
    rows = session.execute(
        select(language, source, voice, func.count(OutboxMessage.id))
        .where(OutboxMessage.created_at >= since, OutboxMessage.status != "failed")
        .group_by(language, source, voice))
    heard: dict[str, Counter] = {}
    shown: dict[str, Counter] = {}
    unfixed: Counter = Counter()
    for lang, msgid, spoken, count in rows:
        if not lang:
            continue
        if spoken and not msgid:
            unfixed[lang] += count
        elif msgid:
            (heard if spoken else shown).setdefault(lang, Counter())[msgid] += count
    return heard, shown, unfixed


def clip_table(config: Config, session, language: str, translate) -> tuple[list[ClipRow],
                                                                          Coverage]:
    """The page's rows for a language, most heard first, and its coverage."""
    heard, shown, unfixed = outbox_counts(session, utcnow() - timedelta(days=HEARD_DAYS))
    return _rows(config, language, translate, heard.get(language, Counter()),
                 shown.get(language, Counter()), unfixed[language])


def all_coverage(config: Config, session) -> list[Coverage]:
    """Coverage of every language, in the order of config.yml."""
    heard, shown, unfixed = outbox_counts(session, utcnow() - timedelta(days=HEARD_DAYS))
    return [_rows(config, lang, str, heard.get(lang, Counter()), shown.get(lang, Counter()),
                  unfixed[lang])[1] for lang in config.language_ids]


def _rows(config: Config, language: str, translate, heard: Counter, shown: Counter,
          unfixed: int) -> tuple[list[ClipRow], Coverage]:
    recorded = recorded_clips(config.voice.clips_dir, language)
    messages = fixed_messages(config)
    order = {msgid: i for i, (_, msgid) in enumerate(messages)}
    rows = [ClipRow(clip, msgid, translate(msgid), heard[msgid], shown[msgid], clip in recorded)
            for clip, msgid in messages]
    rows.sort(key=lambda r: (-r.heard, -r.shown, order[r.msgid]))
    coverage = Coverage(
        language=language,
        heard=sum(r.heard for r in rows), heard_recorded=sum(r.heard for r in rows if r.recorded),
        shown=sum(r.shown for r in rows), shown_recorded=sum(r.shown for r in rows if r.recorded),
        unfixed=unfixed, recorded=sum(r.recorded for r in rows), expected=len(rows))
    return rows, coverage


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float samples and their rate from OGG (Vorbis or Opus), MP3, WAV or WebM/Opus (what
    Chromium's MediaRecorder makes, decoded by PyAV's FFmpeg). Raises ClipError."""
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
        return samples.mean(axis=1), rate
    except (RuntimeError, TypeError, ValueError):  # not a format libsndfile reads
        pass
    try:
        import av  # PyAV: FFmpeg's demuxers and decoders in its wheel (no ffmpeg program)
    except ImportError:
        raise ClipError("unreadable") from None
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise ClipError("unreadable")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=48_000)
            chunks = []
            for frame in container.decode(stream):
                chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except (av.FFmpegError, ValueError, EOFError):
        raise ClipError("unreadable") from None
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), 48_000


def to_clip(data: bytes, max_bytes: int) -> tuple[bytes, float]:
    """An uploaded or recorded file as the OGG/Opus the clip engine sends, and its seconds.

    Raises ClipError("too-big" | "unreadable" | "empty" | "silent" | "too-long")."""
    if len(data) > max_bytes:
        raise ClipError("too-big")
    samples, rate = decode(data)
    if rate <= 0 or len(samples) == 0:
        raise ClipError("empty")
    if len(samples) / rate > MAX_CLIP_SECONDS:
        raise ClipError("too-long")
    if float(np.max(np.abs(samples))) < SILENCE:
        raise ClipError("silent")
    return encode_opus(samples, rate)


def save_clip(clips_dir: Path, language: str, clip: str, ogg: bytes) -> Path:
    """Writes <clips_dir>/<language>/<clip>.ogg whole (temporary file, then rename) and removes
    older recordings of the message in other formats."""
    folder = Path(clips_dir) / language
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{clip}.ogg"
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as part:
        part.write(ogg)
    os.replace(part.name, target)
    for suffix in CLIP_SUFFIXES:
        if suffix != ".ogg":
            (folder / f"{clip}{suffix}").unlink(missing_ok=True)
    return target


def delete_clip(clips_dir: Path, language: str, clip: str) -> bool:
    """Removes every recording of the message in that language; True if there was one."""
    found = False
    for suffix in CLIP_SUFFIXES:
        path = Path(clips_dir) / language / f"{clip}{suffix}"
        if path.is_file():
            path.unlink()
            found = True
    return found


ERRORS = {
    "too-big": "The file is larger than {megabytes} MB.",
    "unreadable": "This file is not audio that can be read (OGG, MP3, WAV or WebM).",
    "empty": "The recording is empty.",
    "too-long": "The recording is longer than {seconds} seconds.",
    "silent": "The recording is silent. Check the microphone.",
    "missing": "Choose a file or record first.",
}


def megabytes(size: int) -> str:
    """A byte count in MB for staff: "1", "2.5"."""
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0")


class ClipPages:
    """The /clips pages (mixed into Console: uses self.config, self.db, self.render)."""

    def _clip_target(self, request: HttpRequest) -> tuple[str, str, str] | None:
        """(language, clip id, msgid) from the path, if both are known."""
        language = request.path_params["language"]
        clip = request.path_params["clip"]
        if language not in self.config.language_ids:
            return None
        msgid = dict(fixed_messages(self.config)).get(clip)
        return (language, clip, msgid) if msgid else None

    def clips_page(self, request: HttpRequest) -> Response:
        staff = request.state.staff
        languages = self.config.language_ids
        language = request.query_params.get("language")
        if language not in languages:
            language = next((lang for lang in languages if clips_only(self.config, lang)),
                            self.config.default_language)
        translate = self.catalogs.translator(language)
        with self.db.session() as session:
            rows, coverage = clip_table(self.config, session, language, translate)
            summary = all_coverage(self.config, session)
        return self.render(
            request, "clips.html", rows=rows, coverage=coverage, summary=summary,
            chosen=language, chosen_language=self.config.language(language),
            clips_only=clips_only(self.config, language), days=HEARD_DAYS,
            can_record=staff.may("staff"), max_bytes=self.config.console.max_form_bytes,
            max_megabytes=megabytes(self.config.console.max_form_bytes),
            accept=",".join(UPLOAD_SUFFIXES) + ",audio/*")

    def clip_audio(self, request: HttpRequest) -> Response:
        target = self._clip_target(request)
        path = clip_path(self.config.voice.clips_dir, *target[:2]) if target else None
        if path is None:
            return self.refuse(request, 404, StaffTranslator(
                request.state.staff.language)("Not found."))
        if path.suffix == ".wav":
            return FileResponse(path, media_type="audio/wav")
        return FileResponse(path, media_type=MIME_TYPES[path.suffix])

    def clip_upload(self, request: HttpRequest) -> Response:
        staff = request.state.staff
        t = StaffTranslator(staff.language)
        target = self._clip_target(request)
        if target is None:
            return self.refuse(request, 404, t("Not found."))
        language, clip, _ = target
        back = f"/clips?language={quote(language)}#clip-{clip}"
        upload = request.state.form.get("audio")
        try:
            if upload is None or isinstance(upload, str):
                raise ClipError("missing")
            limit = self.config.console.max_form_bytes
            data = upload.file.read(limit + 1)
            if not data:
                raise ClipError("missing")
            ogg, seconds = to_clip(data, limit)
        except ClipError as exc:
            reason = str(exc)
            request.session["flash"] = t(ERRORS[reason], megabytes=megabytes(limit),
                                         seconds=int(MAX_CLIP_SECONDS))
            log.info("console: clip %s/%s refused (%s)", language, clip, reason)
            return RedirectResponse(back, status_code=303)
        save_clip(self.config.voice.clips_dir, language, clip, ogg)
        with self.db.session() as session:
            auth.audit(session, staff.name, "clip.save", f"{language}/{clip}",
                       {"seconds": round(seconds, 1), "bytes": len(ogg)})
        request.session["flash"] = t("Recording saved ({seconds} s).",
                                     seconds=f"{seconds:.1f}")
        return RedirectResponse(back, status_code=303)

    def clip_delete(self, request: HttpRequest) -> Response:
        staff = request.state.staff
        t = StaffTranslator(staff.language)
        target = self._clip_target(request)
        if target is None:
            return self.refuse(request, 404, t("Not found."))
        language, clip, _ = target
        if delete_clip(self.config.voice.clips_dir, language, clip):
            with self.db.session() as session:
                auth.audit(session, staff.name, "clip.delete", f"{language}/{clip}")
            request.session["flash"] = t("Recording deleted.")
        return RedirectResponse(f"/clips?language={quote(language)}#clip-{clip}",
                                status_code=303)
