"""Scores a model on the held-out sets: accuracy, macro-F1 and the most confused pairs."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.config import Config
from nlu.keywords import NLU_DIR

ANNOTATION = re.compile(r"\[([^\]]+)\]\((\w+)(?::[\w]+)?\)")


def load_examples(path: Path) -> list[tuple[str, str]]:
    """(text, intent) pairs of a Rasa YAML file, with entity annotations removed."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    pairs = []
    for item in data.get("nlu", []):
        if "intent" not in item:
            continue
        for line in item["examples"].splitlines():
            line = line.strip()
            if line.startswith("- "):
                pairs.append((ANNOTATION.sub(lambda m: m.group(1), line[2:].strip()),
                              item["intent"]))
    return pairs


# The held-out sets (nlu-contract.md): sentences written with time, and short hurried messages.
TEST_SETS = {"long": "{language}.yml", "short": "{language}-short.yml"}


def test_files(config: Config, kind: str = "long") -> dict[str, Path]:
    return {lang: NLU_DIR / "tests" / TEST_SETS[kind].format(language=lang)
            for lang in config.language_ids}


@dataclass
class Score:
    language: str
    total: int = 0
    correct: int = 0
    correct_top: int = 0
    fallbacks: int = 0
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (true, predicted) as served
    top_pairs: list[tuple[str, str]] = field(default_factory=list)  # (true, top-ranked intent)
    confidences: list[tuple[float, bool]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def accuracy_top(self) -> float:
        return self.correct_top / self.total if self.total else 0.0

    def macro_f1(self, top: bool = False) -> float:
        return macro_f1(self.top_pairs if top else self.pairs)

    def confused(self, n: int = 3) -> list[tuple[tuple[str, str], int]]:
        return Counter((t, p) for t, p in self.pairs if t != p).most_common(n)


def macro_f1(pairs: list[tuple[str, str]]) -> float:
    """Mean F1 over the true intents (a fallback counts as a wrong prediction)."""
    labels = sorted({t for t, _ in pairs})
    if not labels:
        return 0.0
    scores = []
    for label in labels:
        tp = sum(1 for t, p in pairs if t == label and p == label)
        fp = sum(1 for t, p in pairs if t != label and p == label)
        fn = sum(1 for t, p in pairs if t == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores)


async def score_language(understander, language: str, path: Path) -> Score:
    score = Score(language)
    for text, intent in load_examples(path):
        understood = await understander.parse(text, language)
        top = understood.ranking[0][0] if understood.ranking else understood.intent
        if understood.intent == "emergency":
            top = "emergency"  # the keyword backstop overrides the ranking
        score.total += 1
        score.correct += understood.intent == intent
        score.correct_top += top == intent
        score.fallbacks += understood.intent == "nlu_fallback"
        score.pairs.append((intent, understood.intent))
        score.top_pairs.append((intent, top))
        score.confidences.append((understood.confidence, top == intent))
    return score


def evaluate(understander, config: Config, kind: str = "long") -> list[Score]:
    async def run():
        return [await score_language(understander, lang, path)
                for lang, path in test_files(config, kind).items() if path.is_file()]

    return asyncio.run(run())


def report(scores: list[Score]) -> str:
    """The table `linli nlu test` prints (Markdown, so it pastes into docs/nlu.md)."""
    lines = [
        ("| language | examples | accuracy | macro-F1 | fallback rate | top-1 accuracy "
         "| top-1 macro-F1 | most confused (true → served, count) |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        confused = "; ".join(f"{t} → {p} ({n})" for (t, p), n in s.confused())
        lines.append(
            f"| {s.language} | {s.total} | {s.accuracy:.3f} | {s.macro_f1():.3f} | "
            f"{s.fallbacks / s.total:.3f} | {s.accuracy_top:.3f} | {s.macro_f1(top=True):.3f} "
            f"| {confused or '—'} |"
        )
    return "\n".join(lines)
