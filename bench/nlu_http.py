"""The NLU in-process and apart: messages/s, latency and memory of each placement (issue 16).

    .venv/bin/python bench/nlu_http.py [--limit N] [--port 5799] > nlu-http.md

Starts `linli nlu serve` (Rasa's own `rasa run --enable-api` on the current model) and loads
the same model in this process. For every held-out message of nlu/tests/ (both sets, all
languages), at 1, 8 and 32 messages in flight, it measures:
(a) the in-process understander (`RasaUnderstander.parse`, as `linli serve` calls it on its
    event loop), (b) Rasa's `/model/parse` called directly (the stock peer: the request and
    its JSON, nothing of Linli's), (c) Linli's HTTP understander through that server
    (`HttpUnderstander.parse`: the request plus the same conversion as (a)).
A message's latency runs from the moment it is issued: the messages in flight take turns on
one event loop, so an in-process parse also waits for those before it, as a turn would.
Memory: the peak resident set (VmHWM) of the Rasa server and of this process after (a).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx

from bot.config import load_config
from bot.messages import NLU_UNAVAILABLE
from nlu.engine import RasaUnderstander
from nlu.evaluate import TEST_SETS, load_examples, test_files
from nlu.remote import HttpUnderstander

CONCURRENCY = (1, 8, 32)
READY_WITHIN = 180.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def peak_rss_mb(pid: int | str = "self") -> float:
    """The process's peak resident set size (VmHWM, Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(port: int, log: Path) -> subprocess.Popen:
    """`linli nlu serve`; the process becomes Rasa's server (exec), so its pid is the server's."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "nlu", "serve", "--port", str(port)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"`linli nlu serve` stopped: see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/status", timeout=2.0).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(1)
    process.terminate()
    raise SystemExit(f"Rasa's server was not ready within {READY_WITHIN:.0f} s: see {log}")


async def measure(call, texts: list[str], concurrency: int) -> dict:
    """Runs `call(text)` over all texts with `concurrency` in flight; latencies in ms."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)
    latencies: list[float] = []
    failures = 0

    async def worker() -> None:
        nonlocal failures
        while not queue.empty():
            text = queue.get_nowait()
            issued = time.perf_counter()
            await asyncio.sleep(0)  # the others in flight are issued too before this one runs
            if not await call(text):
                failures += 1
            latencies.append((time.perf_counter() - issued) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {"rate": len(texts) / seconds, "p50": statistics.median(latencies),
            "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
            "failures": failures}


async def run_all(config, texts: list[str], url: str) -> tuple[dict, float]:
    results: dict[tuple[str, int], dict] = {}

    understander = RasaUnderstander(config)

    async def in_process(text: str) -> bool:
        await understander.parse(text, None)
        return True

    for text in texts[:20]:  # warm-up
        await in_process(text)
    for concurrency in CONCURRENCY:
        results[("in-process", concurrency)] = await measure(in_process, texts, concurrency)
    in_process_peak = peak_rss_mb()

    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0))

    async def stock(text: str) -> bool:
        response = await client.post(f"{url}/model/parse", json={"text": text})
        return response.status_code == 200 and "intent" in response.json()

    remote = HttpUnderstander(config, url)

    async def over_http(text: str) -> bool:
        return (await remote.parse(text, None)).intent != NLU_UNAVAILABLE

    for name, call in (("rasa /model/parse (stock)", stock), ("HttpUnderstander", over_http)):
        for text in texts[:20]:
            await call(text)
        for concurrency in CONCURRENCY:
            results[(name, concurrency)] = await measure(call, texts, concurrency)
    await client.aclose()
    await remote.aclose()
    return results, in_process_peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only the first N held-out messages")
    parser.add_argument("--port", type=int, default=5799)
    args = parser.parse_args()
    config = load_config()
    texts = [text for kind in TEST_SETS for path in test_files(config, kind).values()
             for text, _ in load_examples(path)][:args.limit]
    log = ROOT / "var" / "nlu-http-bench.log"
    log.parent.mkdir(exist_ok=True)
    load_before = os.getloadavg()
    started = time.monotonic()
    server = start_server(args.port, log)
    ready = time.monotonic() - started
    try:
        server_loaded = peak_rss_mb(server.pid)
        results, in_process_peak = asyncio.run(
            run_all(config, texts, f"http://127.0.0.1:{args.port}"))
        server_peak = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"{len(texts)} held-out messages (nlu/tests/, both sets, six languages) per row; "
          f"{os.cpu_count()} CPUs; load average (1, 5, 15 min) before: "
          f"{', '.join(f'{v:.2f}' for v in load_before)}, after: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    print("| placement | in flight | messages/s | p50 ms | p95 ms | p99 ms | failed |")
    print("|---|---|---|---|---|---|---|")
    for (name, concurrency), r in results.items():
        print(f"| {name} | {concurrency} | {r['rate']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | "
              f"{r['p99']:.1f} | {r['failures']} |")
    print("\n| memory | MB |")
    print("|---|---|")
    print(f"| Rasa's server, model loaded, before any message | {server_loaded:.0f} |")
    print(f"| Rasa's server, peak over all runs | {server_peak:.0f} |")
    print(f"| a process holding the model in-process, peak after its runs | "
          f"{in_process_peak:.0f} |")
    print(f"\nserver ready in {ready:.0f} s (`linli nlu serve` to GET /status 200)")


if __name__ == "__main__":
    main()
