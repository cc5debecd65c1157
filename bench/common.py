"""Shared by the NLU benchmarks: write Rasa data, train Linli's pipeline on it, parse in bulk."""

from __future__ import annotations

import asyncio
import re
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_config
from nlu.engine import PIPELINE, quiet_rasa, train

SHARED = ROOT.parent / "shared" / "benchmarks"


def pipeline_without_fallback(folder: Path) -> Path:
    """Linli's own pipeline, minus the FallbackClassifier: benchmarks apply thresholds themselves."""
    text = PIPELINE.read_text(encoding="utf-8")
    text = re.sub(r"\n  - name: FallbackClassifier\n(    .*\n?)*", "\n", text)
    path = folder / "pipeline.yml"
    path.write_text(text, encoding="utf-8")
    return path


def write_rasa_data(path: Path, examples: dict[str, list[str]]) -> None:
    """Rasa YAML from {intent: [texts]}; texts are escaped so no entity syntax is read."""
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in examples.items():
        lines += [f"- intent: {intent}", "  examples: |"]
        for text in texts:
            clean = " ".join(text.replace("[", "(").replace("]", ")").split())
            lines.append(f"    - {clean}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def train_and_load(folder: Path, data: Path | list[Path], name: str, adjust=None):
    """Trains Linli's pipeline on the file(s) `data`; returns (agent, seconds to train).

    `adjust(path)` may edit the benchmark's copy of the pipeline before training.
    """
    quiet_rasa()
    from rasa.core.agent import Agent

    config = load_config()
    started = time.monotonic()
    files = data if isinstance(data, list) else [data]
    pipeline = pipeline_without_fallback(folder)
    if adjust is not None:
        adjust(pipeline)
    path, _ = train(config, force=True, pipeline=pipeline, files=files,
                    output=folder / f"{name}.tar.gz")
    seconds = time.monotonic() - started
    return Agent.load(str(path)), seconds


def intent_classifier(agent):
    """The loaded model's `TunedLogisticRegressionClassifier`, to vary its encoder weight."""
    from nlu.components import TunedLogisticRegressionClassifier

    for node in agent.processor.graph_runner._instantiated_nodes.values():
        if isinstance(node._component, TunedLogisticRegressionClassifier):
            return node._component
    raise SystemExit("the model has no TunedLogisticRegressionClassifier")


def parse_all(agent, texts: list[str]) -> list[list[tuple[str, float]]]:
    """The intent ranking of every text, best first."""

    async def run():
        out = []
        for text in texts:
            result = await agent.parse_message(text)
            out.append([(r["name"], float(r["confidence"])) for r in result["intent_ranking"]])
        return out

    return asyncio.run(run())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
