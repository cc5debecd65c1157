"""Parse latency, model load time and memory of the trained model, as the assistant uses it.

    .venv/bin/linli nlu train && .venv/bin/python bench/nlu_latency.py > latency.md

Loads the model `linli nlu train` left (with the emergency keywords, as in the product), parses
every held-out test sentence of every language three times, and reports p50/p95/p99 per parse,
the load time, and the process's resident memory before and after loading.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_config
from nlu.engine import RasaUnderstander
from nlu.evaluate import TEST_SETS, load_examples, test_files


def rss_mb() -> float:
    """Current resident set size (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    config = load_config()
    before = rss_mb()
    started = time.monotonic()
    understander = RasaUnderstander(config)
    load_seconds = time.monotonic() - started
    after_load = rss_mb()
    texts = [(t, lang) for kind in TEST_SETS for lang, path in test_files(config, kind).items()
             for t, _ in load_examples(path)]

    async def run() -> list[float]:
        for text, lang in texts[:20]:  # warm-up
            await understander.parse(text, lang)
        timings = []
        for _ in range(3):
            for text, lang in texts:
                t0 = time.perf_counter()
                await understander.parse(text, lang)
                timings.append((time.perf_counter() - t0) * 1000)
        return timings

    timings = asyncio.run(run())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| measure | value |")
    print("|---|---|")
    print(f"| model | `{understander.path.name}` |")
    print(f"| parses | {len(timings)} ({len(texts)} held-out messages × 3) |")
    print(f"| parse p50 | {statistics.median(timings):.1f} ms |")
    print(f"| parse p95 | {percentile(timings, 95):.1f} ms |")
    print(f"| parse p99 | {percentile(timings, 99):.1f} ms |")
    print(f"| model load (Agent.load, after imports) | {load_seconds:.1f} s |")
    print(f"| resident memory before loading | {before:.0f} MB |")
    print(f"| resident memory with the model loaded | {after_load:.0f} MB |")
    print(f"| peak resident memory | {peak:.0f} MB |")


if __name__ == "__main__":
    main()
