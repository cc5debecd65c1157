"""Load: simulated residents talk to a running `linli serve` through the fake Bot API server.

    .venv/bin/python bench/load.py [--residents 1000] [--messages 20] [--profile F] > load.md

Starts a PostgreSQL server (as the tests do), the fake Telegram Bot API server of tests/, and
`linli serve` as a subprocess with the real NLU model (train it first: `linli nlu train`).
Every resident waits for the answer to one message and then a second (THINK) before sending
the next, like a person;
all residents talk at once, in six languages, through onboarding, a full report, free text and
commands. Reports throughput, reply latency (from the update being available to the first
reply reaching the server), errors, unanswered messages, and the serving process's peak memory.

The Bot API's own limit of 30 messages a second per bot is lifted here
(LINLI_TELEGRAM_RATE=100000): the benchmark measures what Linli can serve, not Telegram.
The per-chat limit (about one a second, bursts of three) stays.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_bot_api import FakeBotAPI
from tests.postgres import PostgresServer

DESCRIPTION = {
    "zh_Hans": "3号楼的电梯从周一开始就坏了", "zh_Hant": "3號樓的電梯從週一開始就壞了",
    "en": "The lift in building 3 has been broken since Monday",
    "mn": "3-р байрны цахилгаан шат даваа гарагаас хойш эвдэрсэн",
    "bo": "ཁང་པ་གསུམ་པའི་འདེགས་འཕྲུལ་གཟའ་ཟླ་བ་ནས་ཆག་འདུག",
    "ug": "3-بىنانىڭ لىفتى دۈشەنبىدىن بېرى بۇزۇلدى",
}
PLACE = {"zh_Hans": "3号楼2单元", "zh_Hant": "3號樓2單元", "en": "Building 3, entrance 2",
         "mn": "3-р байр, 2-р орц", "bo": "ཁང་པ་གསུམ་པ།", "ug": "3-بىنا، 2-ئىشىك"}
MY_REQUESTS = {"zh_Hans": "我的诉求怎么样了", "zh_Hant": "我的訴求怎麼樣了",
               "en": "what happened to my requests", "mn": "миний хүсэлт юу болсон бэ",
               "bo": "ངའི་རེ་ཞུ་ག་རེ་བྱུང་སོང་།", "ug": "مېنىڭ ئىلتىماسىم قانداق بولدى"}
HELLO = {"zh_Hans": "你好", "zh_Hant": "你好", "en": "hello", "mn": "сайн байна уу",
         "bo": "བཀྲ་ཤིས་བདེ་ལེགས།", "ug": "ياخشىمۇسىز"}
OUT_OF_SCOPE = {"zh_Hans": "今天天气怎么样", "zh_Hant": "今天天氣怎麼樣",
                "en": "what's the weather like today", "mn": "өнөөдөр цаг агаар ямар байна",
                "bo": "དེ་རིང་གནམ་གཤིས་ག་འདྲ་འདུག", "ug": "بۈگۈن ھاۋا قانداق"}
THANKS = {"zh_Hans": "谢谢", "zh_Hant": "謝謝", "en": "thank you", "mn": "баярлалаа",
          "bo": "ཐུགས་རྗེ་ཆེ།", "ug": "رەھمەت"}
LANGUAGES = tuple(DESCRIPTION)
# Seconds a resident takes before the next message: Telegram allows about one message a second
# per chat, so a resident who answers faster is paced by that limit, not by Linli.
THINK = 1.0


def script(language: str, count: int) -> list[tuple[str, str]]:
    """What one resident does: (kind, value), kind "text" or "press"."""
    steps = [
        ("text", "/start"), ("press", f"lang:{language}"), ("press", "voice:off"),
        ("press", "menu:report"), ("press", "cat:facility_repair"),
        ("text", DESCRIPTION[language]), ("text", PLACE[language]), ("press", "photo:skip"),
        ("press", "confirm:submit"), ("press", "menu:requests"), ("text", "/menu"),
        ("text", MY_REQUESTS[language]), ("text", "/menu"), ("text", HELLO[language]),
        ("text", OUT_OF_SCOPE[language]), ("text", "/help"), ("text", "/menu"),
        ("text", THANKS[language]), ("text", "/myrequests"), ("text", "/menu"),
    ]
    while len(steps) < count:
        steps += steps[9:]
    return steps[:count]


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def resident(fake: FakeBotAPI, chat: int, language: str, steps, waiters, latencies,
                   problems, timeout: float) -> None:
    code = language.replace("_", "-").lower()
    for kind, value in steps:
        future = asyncio.get_running_loop().create_future()
        waiters[chat] = future
        started = time.monotonic()
        if kind == "text":
            await asyncio.to_thread(fake.send_text, chat, value, code)
        else:
            await asyncio.to_thread(fake.press, chat, value, code)
        try:
            sent = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            problems.append((chat, value, "no reply"))
            continue
        latencies.append(sent.at - started)
        if "expired" in (sent.text or "") or "went wrong" in (sent.text or ""):
            problems.append((chat, value, f"unexpected reply: {sent.text[:60]!r}"))
        await asyncio.sleep(THINK)  # the rest of the turn's messages arrive; a person reads


async def drive(fake: FakeBotAPI, process: subprocess.Popen, residents: int, messages: int,
                timeout: float) -> dict:
    loop = asyncio.get_running_loop()
    waiters: dict[int, asyncio.Future] = {}

    def on_sent(sent) -> None:  # called in the fake server's thread
        def resolve():
            future = waiters.get(sent.chat_id)
            if future is not None and not future.done():
                future.set_result(sent)
        loop.call_soon_threadsafe(resolve)

    fake.on_sent = on_sent
    # Wait until the bot answers (the NLU model takes ~15 s to load).
    waiters[1] = loop.create_future()
    fake.send_text(1, "/start", "en")
    await asyncio.wait_for(waiters[1], 180)
    latencies: list[float] = []
    problems: list[tuple] = []
    started = time.monotonic()

    async def progress():
        while True:
            await asyncio.sleep(10)
            done = len(latencies) + len(problems)
            print(f"  {done}/{residents * messages} messages answered or timed out "
                  f"({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)

    reporter = asyncio.create_task(progress())
    await asyncio.gather(*(
        resident(fake, 10_000 + i, LANGUAGES[i % 6], script(LANGUAGES[i % 6], messages),
                 waiters, latencies, problems, timeout)
        for i in range(residents)))
    reporter.cancel()
    seconds = time.monotonic() - started
    fake.on_sent = None
    for chat, value, problem in problems[:10]:
        print(f"  chat {chat}: {value!r}: {problem}", file=sys.stderr)
    total = residents * messages
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0

    return {
        "residents": residents, "messages": total, "seconds": seconds,
        "throughput": total / seconds, "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
        "unanswered": sum(1 for p in problems if p[2] == "no reply"),
        "unexpected": sum(1 for p in problems if p[2].startswith("unexpected")),
        "peak_mb": rss_peak_mb(process.pid),
    }


def run(residents: int, messages: int, timeout: float, profile: str | None = None) -> dict:
    server = PostgresServer().start()
    fake = FakeBotAPI().start()
    folder = Path(tempfile.mkdtemp(prefix="linli-load-"))
    env = {**os.environ, "LINLI_DATABASE_URL": server.new_database(),
           "LINLI_DATA_DIR": str(folder), "LINLI_TELEGRAM_TOKEN": fake.token,
           "LINLI_TELEGRAM_BASE_URL": fake.root, "LINLI_TELEGRAM_RATE": "100000"}
    linli = [sys.executable, "-m", "bot.cli"]
    subprocess.run([*linli, "db", "upgrade"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    serve = [*linli, "serve"]
    if profile:  # where the serving process spends its time (`python -m pstats F`)
        serve = [sys.executable, "-m", "cProfile", "-o", profile, *serve[1:]]
    with (folder / "serve.log").open("w") as log:
        process = subprocess.Popen(serve, env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=log)
        try:
            result = asyncio.run(drive(fake, process, residents, messages, timeout))
        finally:
            process.terminate()
            process.wait(60)
            fake.stop()
            server.stop()
    result["log"] = folder / "serve.log"
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--profile", metavar="FILE",
                        help="run `linli serve` under cProfile, its statistics to FILE")
    args = parser.parse_args()
    result = run(args.residents, args.messages, args.timeout, args.profile)
    print("| residents | messages | seconds | messages/s | p50 ms | p95 ms | p99 ms | "
          "unanswered | unexpected replies | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    r = result
    print(f"| {r['residents']} | {r['messages']} | {r['seconds']:.0f} | {r['throughput']:.1f} | "
          f"{r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | {r['unanswered']} | "
          f"{r['unexpected']} | {r['peak_mb']:.0f} |")
    print(f"\n(serve's log: {r['log']})", file=sys.stderr)


if __name__ == "__main__":
    main()
