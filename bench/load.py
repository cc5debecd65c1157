"""Load: simulated residents talk to a running `linli serve` through the fake Bot API server,
or (--channel web) as browser visitors of its web chat.

    .venv/bin/python bench/load.py [--residents 1000] [--messages 20] [--profile F] > load.md
    .venv/bin/python bench/load.py --channel web [--residents 1000] [--messages 20] > load.md
    .venv/bin/python bench/load.py --workers 4 [--kill-one elected|other] [--peer] > load.md

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

--workers N: `linli serve --workers N` in webhook mode (all N listen on one port; the fake
Telegram calls the webhook on up to 32 connections at once, as Telegram does, and the kernel
spreads them); memory is given per worker. --kill-one elected|other: that worker is killed with -9 when half
the messages are answered (its supervisor starts it again); the run then counts, from the
database and the fake server, turns run twice, replies sent twice and replies never sent.
--peer: afterwards, the stock peer: Rasa's own `rasa run --enable-api` on the same model,
asked `/model/parse` for the same residents' free-text messages at the same concurrency
(each resident one message at a time, THINK seconds apart), so the NLU's own cost has a floor.

--channel web: no Telegram; each resident is a browser visitor of /chat with its own cookie
jar (httpx): GET /chat (cookie, CSRF token, the language picker's turn), then the page's event
stream /chat/events?after=<last id> held open, as chat.js holds it, and each message a POST
/chat/send (the form fields and the `x-linli-chat: 1` header the script sends). Latency: from
the POST being sent to the first new message arriving on that visitor's event stream. The web
chat's rate limits (30 messages a minute per visitor after a burst of 10, 30 new visitors an
hour per address: all visitors here come from 127.0.0.1) are raised for the run through a copy
of config.yml (`web_chat:`, LINLI_CONFIG), as Telegram's 30/s is: the benchmark measures what
Linli can serve, not its throttles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

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
                timeout: float, kill_one: str | None = None, database_url: str = "") -> dict:
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

    reporter = asyncio.create_task(progress(latencies, problems, residents * messages, started))
    killer = asyncio.create_task(kill_halfway(process, latencies, residents * messages,
                                              kill_one, database_url)) if kill_one else None
    await asyncio.gather(*(
        resident(fake, 10_000 + i, LANGUAGES[i % 6], script(LANGUAGES[i % 6], messages),
                 waiters, latencies, problems, timeout)
        for i in range(residents)))
    reporter.cancel()
    seconds = time.monotonic() - started
    fake.on_sent = None
    result = summary(residents, messages, seconds, latencies, problems, process)
    if killer is not None:
        result["killed"] = await killer
    return result


async def kill_halfway(process: subprocess.Popen, latencies: list, total: int, which: str,
                       database_url: str) -> int | None:
    """Kills one worker with -9 once half the messages are answered (`which`: the elected
    sender, or another one); its pid."""
    while len(latencies) < total // 2:
        await asyncio.sleep(0.2)
    workers = children(process.pid)
    if not workers:
        return None
    chosen = elected_worker(database_url, workers)
    if which != "elected":
        chosen = next(pid for pid in workers if pid != chosen)
    os.kill(chosen, signal.SIGKILL)
    print(f"  killed the {which} worker {chosen} with -9 at {len(latencies)} answers",
          file=sys.stderr, flush=True)
    return chosen


def elected_worker(database_url: str, workers: list[int]) -> int | None:
    """The worker holding the election's advisory lock (bot/cluster.py), found through the
    client port of the database connection that holds it."""
    from sqlalchemy import create_engine, text

    from tests.test_workers import _local_ports

    engine = create_engine(database_url, future=True)
    with engine.connect() as connection:
        port = connection.execute(text(
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid = 7002 AND l.granted")).scalar()
    engine.dispose()
    return next((pid for pid in workers if port in _local_ports(pid)), None)


def children(pid: int) -> list[int]:
    """The worker processes of `linli serve --workers` (none: it serves itself)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return sorted(found)


def exactly_once(database_url: str, fake: FakeBotAPI) -> dict:
    """From the database and the fake Telegram, after the run: updates run more than once
    (a turn in for the same update twice cannot be told apart by id, so: turns in against
    updates Telegram had answered 2xx), replies Telegram got twice, replies never sent."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url, future=True)
    with engine.connect() as connection:
        turns_in = connection.execute(text(
            "SELECT count(*) FROM turns WHERE direction = 'in' AND channel = 'telegram'")).scalar()
        statuses = dict(connection.execute(text(
            "SELECT status, count(*) FROM outbox GROUP BY status")).all())
        waiting = connection.execute(text(
            "SELECT count(*) FROM channel_inbox WHERE processed_at IS NULL")).scalar()
    engine.dispose()
    got = len(fake.sent)
    sent = statuses.get("sent", 0)
    unconfirmed = statuses.get("unconfirmed", 0)
    return {"updates": len(fake.updates), "turns_in": turns_in, "inbox_waiting": waiting,
            "outbox": statuses, "telegram_got": got,
            "doubled": max(0, got - sent - unconfirmed),
            "lost_at_most": unconfirmed - max(0, min(unconfirmed, got - sent))}


async def progress(latencies: list, problems: list, total: int, started: float) -> None:
    while True:
        await asyncio.sleep(10)
        done = len(latencies) + len(problems)
        print(f"  {done}/{total} messages answered or timed out "
              f"({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)


def worker_peaks_mb(pid: int) -> list[float]:
    """Peak RSS of each worker (or of the one serving process)."""
    return [rss_peak_mb(p) for p in (children(pid) or [pid])]


def summary(residents: int, messages: int, seconds: float, latencies: list[float],
            problems: list[tuple], process: subprocess.Popen) -> dict:
    for chat, value, problem in problems[:10]:
        print(f"  chat {chat}: {value!r}: {problem}", file=sys.stderr)
    kinds: dict[str, int] = {}
    for _, _, problem in problems:
        kind = problem.split(":")[0] if problem.startswith("unexpected") else problem
        kinds[kind] = kinds.get(kind, 0) + 1
    for kind, count in sorted(kinds.items(), key=lambda item: -item[1]):
        print(f"  {count} × {kind}", file=sys.stderr)
    total = residents * messages
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0

    return {
        "residents": residents, "messages": total, "seconds": seconds,
        "throughput": total / seconds, "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
        "unanswered": sum(1 for p in problems if p[2].startswith("no reply")),
        "unexpected": sum(1 for p in problems if p[2].startswith("unexpected")),
        "refused": sum(1 for p in problems if not p[2].startswith(("no reply", "unexpected"))),
        "peak_mb": max(worker_peaks_mb(process.pid)),
    }


# --- the web chat (--channel web) ---------------------------------------------------------------
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LAST = re.compile(r'data-last="(\d+)"')
# Raised for the run (config.yml `web_chat:`): every simulated visitor comes from 127.0.0.1.
WEB_LIMITS = {"messages_per_minute": 1_000_000, "message_burst": 1_000_000,
              "new_visitors_per_hour": 1_000_000}


class Visitor:
    """One browser: its cookie jar, the page's CSRF token, and the page's event stream."""

    def __init__(self, base: str, language: str, timeout: float):
        self.http = httpx.AsyncClient(
            base_url=base, timeout=httpx.Timeout(timeout, connect=timeout),
            headers={"accept-language": language.replace("_", "-")})
        self.token = ""
        self.last = 0
        self.arrived: asyncio.Queue = asyncio.Queue()  # (monotonic time, message) from the stream
        self._reader: asyncio.Task | None = None

    async def open(self) -> None:
        """GET /chat as a browser does: the cookie, the token, the newcomer's picker turn."""
        page = await self.http.get("/chat")
        page.raise_for_status()
        self.token = CSRF.search(page.text).group(1)
        self.last = int(LAST.search(page.text).group(1))
        connected = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._listen(connected))
        await connected

    async def _listen(self, connected: asyncio.Future) -> None:
        """The page's EventSource: /chat/events after the last id, each message onto `arrived`;
        reconnects with Last-Event-ID as a browser does if the stream drops."""
        while True:
            try:
                async with self.http.stream(
                        "GET", f"/chat/events?after={self.last}",
                        headers={"accept": "text/event-stream",
                                 "last-event-id": str(self.last)},
                        timeout=httpx.Timeout(None, connect=60.0)) as stream:
                    stream.raise_for_status()
                    if not connected.done():
                        connected.set_result(None)
                    data = []
                    async for line in stream.aiter_lines():
                        if line.startswith("data: "):
                            data.append(line[6:])
                        elif line.startswith("id: "):
                            self.last = max(self.last, int(line[4:]))
                        elif not line and data:
                            message = json.loads("\n".join(data))
                            data = []
                            if "skip" not in message:
                                self.arrived.put_nowait((time.monotonic(), message))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  (a dropped stream: reconnect, as a browser)
                if not connected.done():
                    connected.set_exception(exc)
                    return
            await asyncio.sleep(2.0)  # the stream's `retry: 2000`

    async def send(self, kind: str, value: str) -> httpx.Response:
        field = "text" if kind == "text" else "payload"
        return await self.http.post("/chat/send", data={"csrf_token": self.token, field: value},
                                    headers={"x-linli-chat": "1"})

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.http.aclose()


async def web_resident(base: str, number: int, language: str, steps, latencies, problems,
                       timeout: float, visitors: list) -> None:
    visitor = Visitor(base, language, timeout)
    visitors.append(visitor)
    try:
        await visitor.open()
    except Exception as exc:  # noqa: BLE001
        problems.extend((number, value, f"could not open the chat ({type(exc).__name__})")
                        for _, value in steps)
        return
    # The opening turn's picker came with the page (the stream starts after its id).
    for kind, value in steps:
        while not visitor.arrived.empty():  # the rest of the previous turn's messages
            visitor.arrived.get_nowait()
        started = time.monotonic()
        try:
            answer = await visitor.send(kind, value)
        except httpx.HTTPError as exc:
            problems.append((number, value, f"no reply (POST failed: {type(exc).__name__})"))
            continue
        if answer.status_code == 429:
            problems.append((number, value, "refused (429)"))
            continue
        if answer.status_code != 200 or not answer.json().get("ok"):
            # A failed turn: its apology is in the answer, nothing reaches the stream.
            problems.append((number, value,
                             f"unexpected reply: HTTP {answer.status_code} {answer.text[:60]!r}"))
            continue
        try:
            at, message = await asyncio.wait_for(
                visitor.arrived.get(), max(0.0, timeout - (time.monotonic() - started)))
        except asyncio.TimeoutError:
            problems.append((number, value, "no reply"))
            continue
        latencies.append(at - started)
        text = message.get("text") or ""
        if "expired" in text or "went wrong" in text:
            problems.append((number, value, f"unexpected reply: {text[:60]!r}"))
        await asyncio.sleep(THINK)  # the rest of the turn's messages arrive; a person reads


async def drive_web(base: str, process: subprocess.Popen, residents: int, messages: int,
                    timeout: float) -> dict:
    # Wait until the chat answers (the NLU model loads before the server listens).
    deadline = time.monotonic() + 300
    async with httpx.AsyncClient(base_url=base, timeout=10) as probe:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"linli serve exited ({process.returncode})")
            try:
                if (await probe.get("/chat")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the web chat did not answer within 300 s")
            await asyncio.sleep(1.0)
    latencies: list[float] = []
    problems: list[tuple] = []
    visitors: list[Visitor] = []
    started = time.monotonic()
    reporter = asyncio.create_task(progress(latencies, problems, residents * messages, started))
    try:
        await asyncio.gather(*(
            web_resident(base, i, LANGUAGES[i % 6], script(LANGUAGES[i % 6], messages),
                         latencies, problems, timeout, visitors)
            for i in range(residents)))
    finally:
        reporter.cancel()
    seconds = time.monotonic() - started
    await asyncio.gather(*(visitor.close() for visitor in visitors))
    return summary(residents, messages, seconds, latencies, problems, process)


def web_config(folder: Path) -> Path:
    """config.yml with the web chat's rate limits raised for the run."""
    raw = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    raw["web_chat"] = {**(raw.get("web_chat") or {}), **WEB_LIMITS}
    path = folder / "config.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(residents: int, messages: int, timeout: float, profile: str | None = None,
        channel: str = "telegram", workers: int | None = None, kill_one: str | None = None,
        peer: bool = False) -> dict:
    server = PostgresServer().start()
    folder = Path(tempfile.mkdtemp(prefix="linli-load-"))
    env = {**os.environ, "LINLI_DATABASE_URL": server.new_database(),
           "LINLI_DATA_DIR": str(folder)}
    fake = None
    if channel == "telegram":
        fake = FakeBotAPI().start()
        env.update({"LINLI_TELEGRAM_TOKEN": fake.token, "LINLI_TELEGRAM_BASE_URL": fake.root,
                    "LINLI_TELEGRAM_RATE": "100000"})
        if workers is not None:  # webhook mode: every worker listens on the one port
            hook = free_port()
            env.update({"LINLI_TELEGRAM_WEBHOOK_URL":
                        f"http://127.0.0.1:{hook}/{fake.token.split(':')[0]}",
                        "LINLI_TELEGRAM_WEBHOOK_PORT": str(hook),
                        "LINLI_CONSOLE_HOST": "127.0.0.1", "LINLI_CONSOLE_PORT": str(free_port())})
            fake.webhook_parallel = 32
    else:  # the web chat only, on a free port, its rate limits raised (see the docstring)
        env.pop("LINLI_TELEGRAM_TOKEN", None)
        port = free_port()
        env.update({"LINLI_CONFIG": str(web_config(folder)), "LINLI_CONSOLE_HOST": "127.0.0.1",
                    "LINLI_CONSOLE_PORT": str(port)})
        # Every visitor holds two connections (its event stream and its posts), at both ends.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = min(hard, max(soft, 4 * residents + 1024))
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    linli = [sys.executable, "-m", "bot.cli"]
    subprocess.run([*linli, "db", "upgrade"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    serve = [*linli, "serve"] + (["--workers", str(workers)] if workers else [])
    if profile:  # where the serving process spends its time (`python -m pstats F`)
        serve = [sys.executable, "-m", "cProfile", "-o", profile, *serve[1:]]
    with (folder / "serve.log").open("w") as log:
        process = subprocess.Popen(serve, env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=log)
        try:
            if fake is not None:
                result = asyncio.run(drive(fake, process, residents, messages, timeout,
                                           kill_one, env["LINLI_DATABASE_URL"]))
            else:
                result = asyncio.run(drive_web(f"http://127.0.0.1:{port}", process, residents,
                                               messages, timeout))
            result["worker_peaks_mb"] = worker_peaks_mb(process.pid)
            time.sleep(3)  # the last replies leave
            if fake is not None:
                result["delivery"] = exactly_once(env["LINLI_DATABASE_URL"], fake)
        finally:
            process.terminate()
            process.wait(60)
            if fake is not None:
                fake.stop()
            server.stop()
    result["log"] = folder / "serve.log"
    if peer:
        result["peer"] = run_peer(residents, messages, timeout)
    return result


def run_peer(residents: int, messages: int, timeout: float) -> dict:
    """Rasa's own server on the same model, asked /model/parse for the residents' free-text
    messages at the same concurrency (see the module's docstring)."""
    sys.path.insert(0, str(ROOT))
    from bot.config import load_config
    from nlu.engine import find_model

    model = find_model(load_config())
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="linli-peer-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RASA_TELEMETRY_ENABLED": "false"}
    with (folder / "rasa.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rasa", "run", "--enable-api", "-m", str(model),
             "--port", str(port), "-i", "127.0.0.1"],
            env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        try:
            return asyncio.run(drive_peer(f"http://127.0.0.1:{port}", process, residents,
                                          messages, timeout))
        finally:
            process.terminate()
            process.wait(60)


async def drive_peer(url: str, process: subprocess.Popen, residents: int, messages: int,
                     timeout: float) -> dict:
    limits = httpx.Limits(max_connections=residents, max_keepalive_connections=residents)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        deadline = time.monotonic() + 300
        while True:
            try:
                if (await http.get(f"{url}/status")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("rasa run --enable-api did not start")
            await asyncio.sleep(1)
        latencies: list[float] = []
        problems: list[tuple] = []

        async def one(i: int) -> None:
            language = LANGUAGES[i % 6]
            for kind, value in script(language, messages):
                if kind != "text" or value.startswith("/"):
                    continue  # buttons and commands never reach the NLU
                started = time.monotonic()
                try:
                    answer = await http.post(f"{url}/model/parse", json={"text": value})
                    answer.raise_for_status()
                    latencies.append(time.monotonic() - started)
                except httpx.HTTPError as exc:
                    problems.append((i, value, f"refused: {type(exc).__name__}"))
                await asyncio.sleep(THINK)

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(residents)))
        seconds = time.monotonic() - started
    count = len(latencies) + len(problems)
    result = summary(residents, 0, seconds, latencies, problems, process)
    result.update(messages=count, throughput=count / seconds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channel", choices=("telegram", "web"), default="telegram",
                        help="telegram: the fake Bot API server; web: browser visitors of /chat")
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--profile", metavar="FILE",
                        help="run `linli serve` under cProfile, its statistics to FILE")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="`linli serve --workers N`, Telegram by webhook")
    parser.add_argument("--kill-one", choices=("elected", "other"),
                        help="kill that worker with -9 halfway; count doubles and losses")
    parser.add_argument("--peer", action="store_true",
                        help="then the same free text to `rasa run --enable-api` /model/parse")
    args = parser.parse_args()
    result = run(args.residents, args.messages, args.timeout, args.profile, args.channel,
                 args.workers, args.kill_one, args.peer)
    print("| residents | messages | seconds | messages/s | p50 ms | p95 ms | p99 ms | "
          "unanswered | unexpected replies | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    r = result
    print(f"| {r['residents']} | {r['messages']} | {r['seconds']:.0f} | {r['throughput']:.1f} | "
          f"{r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | {r['unanswered']} | "
          f"{r['unexpected']} | {r['peak_mb']:.0f} |")
    if r["refused"]:
        print(f"\n{r['refused']} messages refused or not sent (rate limit, chat not opened)")
    if "worker_peaks_mb" in r:
        print(f"\npeak RSS per worker MB: {', '.join(f'{m:.0f}' for m in r['worker_peaks_mb'])}")
    if "delivery" in r:
        print(f"\nexactly once: {json.dumps(r['delivery'])}")
    if r.get("killed"):
        print(f"\nthe {args.kill_one} worker ({r['killed']}) was killed with -9 halfway")
    if "peer" in r:
        p = r["peer"]
        print("\nthe stock peer, `rasa run --enable-api` /model/parse, same free text, same "
              "concurrency:\n\n| requests | seconds | requests/s | p50 ms | p95 ms | p99 ms | "
              "refused | peak RSS MB |\n|---|---|---|---|---|---|---|---|")
        print(f"| {p['messages']} | {p['seconds']:.0f} | {p['throughput']:.1f} | {p['p50']:.0f} | "
              f"{p['p95']:.0f} | {p['p99']:.0f} | {p['refused']} | {p['peak_mb']:.0f} |")
    print(f"\n(serve's log: {r['log']})", file=sys.stderr)


if __name__ == "__main__":
    main()
