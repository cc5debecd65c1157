"""The terminal chat: replies as text, buttons as numbered choices; works interactively or piped.

With voice on, each turn's audio is written under the data dir and named in one line (and
played, with `--play`), so a newcomer hears what a senior resident hears."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sqlalchemy import select

from bot.i18n import RLM
from bot.messages import Capability, Incoming, Reply, numbered_choices, voice_payload
from bot.models import Resident

if TYPE_CHECKING:
    from bot.core import Assistant  # handed in by the wiring, never imported at run time

CHANNEL = "terminal"
SENIOR_LONG_BLOCK = 6  # lines: after a longer block, a senior resident sees the options again
KEEP_AUDIO_FILES = 20  # per resident: older turns' audio is deleted
PLAYERS = (("paplay",), ("aplay", "-q"))  # tried in this order; aplay cannot play OGG/Opus
AUDIO_SUFFIXES = {"audio/ogg": ".ogg", "audio/mpeg": ".mp3"}


def render(replies: list[Reply], senior: bool = False) -> str:
    """One block: each reply's lines, then its buttons as `  N. label`; ends with a blank line.

    Right-to-left lines start with RLM so that a terminal applying bidi sets the paragraph's
    direction from it, even when the line begins with digits or a Latin tracking number. For a
    senior resident, a block longer than SENIOR_LONG_BLOCK lines ends with the numbered options,
    repeated there if other lines came after them.
    """
    lines: list[str] = []
    options: list[str] = []
    options_end = 0
    for reply in replies:
        mark = RLM if reply.rtl else ""
        lines += [mark + line for line in reply.text.splitlines() if line.strip()]
        if reply.venue is not None:  # a map pin: the map's address, for the resident to open
            lines.append(f"{mark}  {reply.venue.map_url}")
        if reply.buttons:
            options = [f"{mark}  {line}"
                       for line in numbered_choices([b.label for b in reply.buttons])]
            lines += options
            options_end = len(lines)
    if senior and options and len(lines) > SENIOR_LONG_BLOCK and options_end < len(lines):
        lines += options
    return "\n".join(lines) + "\n\n"


class Speaker:
    """Speaks each turn for a resident who has voice on: the audio goes to a file under the
    data dir, one line names it, and `play` plays it with paplay or aplay if installed."""

    def __init__(self, assistant: Assistant, voice, play: bool = False):
        self.assistant = assistant
        self.voice = voice
        self.play = play
        self.folder = assistant.config.data_dir / "terminal-voice"
        self.player = next(((shutil.which(p[0]), *p[1:]) for p in PLAYERS
                            if shutil.which(p[0])), None)
        self.turns = 0

    async def line(self, resident: Resident | None, replies: list[Reply]) -> str:
        """The line to print after this turn's replies ("" when voice is off)."""
        spoken = [reply for reply in replies if not reply.secret]
        if resident is None or not resident.voice_on or not spoken or not resident.language:
            return ""
        t = self.assistant.catalogs.translator(resident.language)
        payload = voice_payload(t, resident, spoken)
        from bot.voice import clip_id  # bot.voice loads numpy and scipy: only with voice on

        audio = await self.voice.speak(
            payload["text"], payload["language"], slow=payload["slow"],
            clip_id=clip_id(payload["source"]) if payload["source"] else None,
            cache=payload["cache"])
        if audio is None:
            return f"🔇 {payload['note']}\n"
        self.turns += 1
        folder = self.folder / _safe(resident.channel_user_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.turns:04d}{AUDIO_SUFFIXES.get(audio.mime, '.ogg')}"
        path.write_bytes(audio.data)
        for old in sorted(folder.iterdir())[:-KEEP_AUDIO_FILES]:
            old.unlink(missing_ok=True)
        if self.play and self.player:
            self._play(path)
        return f"🔊 {_shown(path)} ({audio.duration:.1f} s, {audio.engine})\n"


    def _play(self, path: Path) -> None:
        played = path
        if Path(self.player[0]).name == "aplay":  # WAV only
            import soundfile

            samples, rate = soundfile.read(str(path), dtype="float32")
            played = path.with_name("playing.wav")
            soundfile.write(str(played), samples, rate, subtype="PCM_16")
        subprocess.run([*self.player, str(played)], check=False, timeout=300,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _resident(assistant: Assistant, resident_id: str) -> Resident | None:
    with assistant.db.session() as session:
        resident = session.execute(select(Resident).where(
            Resident.channel == CHANNEL,
            Resident.channel_user_id == resident_id)).scalar_one_or_none()
        if resident is not None:
            session.expunge(resident)
        return resident


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:64] or "_"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class TerminalChannel:
    """One resident's conversation on standard input and output (see `chat`); replies are
    shown at once, so the outbox is not used: queued news is shown at the next turn."""

    name = CHANNEL
    carries: frozenset[Capability] = frozenset()
    transport = None

    def __init__(self, assistant: Assistant, resident_id: str, stdin: TextIO = sys.stdin,
                 stdout: TextIO = sys.stdout, interactive: bool | None = None,
                 speaker: Speaker | None = None):
        self.assistant, self.resident_id = assistant, resident_id
        self.stdin, self.stdout, self.interactive = stdin, stdout, interactive
        self.speaker = speaker

    async def start(self) -> None:
        """Runs the conversation until the end of input."""
        await chat(self.assistant, self.resident_id, self.stdin, self.stdout, self.interactive,
                   self.speaker)

    async def stop(self) -> None:
        """Nothing to stop: the conversation ends with its input."""


async def chat(
    assistant: Assistant,
    resident_id: str,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    interactive: bool | None = None,
    speaker: Speaker | None = None,
) -> None:
    """Reads one message per line; prints one reply block per line. Ends at end of input."""
    if interactive is None:
        interactive = stdin.isatty() and stdout.isatty()

    async def show(replies: list[Reply]) -> None:
        resident = _resident(assistant, resident_id)
        block = render(replies, senior=bool(resident and resident.senior_mode))
        if speaker is not None:
            voice_line = await speaker.line(resident, replies)
            block = block[:-1] + voice_line + "\n" if voice_line else block
        stdout.write(block)
        stdout.flush()

    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        await show(await assistant.handle(Incoming(CHANNEL, resident_id, "resume")))
    while True:
        try:
            line = input("> ") if interactive else stdin.readline()
        except (EOFError, KeyboardInterrupt):
            if interactive:
                stdout.write("\n")
            return
        if not interactive and line == "":
            return
        line = line.rstrip("\r\n")
        await show(await assistant.handle(Incoming(CHANNEL, resident_id, "text", text=line)))
