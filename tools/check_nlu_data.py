"""Checks one language's NLU files: counts per intent, entity values, no test/train overlap.

Usage: python tools/check_nlu_data.py LANGUAGE MIN_TRAIN MIN_TEST
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
INTENTS = ["greet", "goodbye", "thank", "help", "affirm", "deny", "cancel", "repeat", "main_menu", "report_problem", "check_request_status", "rate_service", "read_notices", "subscribe_notices", "unsubscribe_notices", "join_poll", "change_language", "voice_on", "voice_off", "talk_to_human", "emergency", "delete_my_data", "find_service", "out_of_scope"]
VALUES = {
    "category": {"facility_repair", "utilities", "sanitation", "noise_dispute", "safety_hazard",
                 "elderly_help", "general"},
    # the language ids config.yml lists (a new language is data only)
    "language": {item["id"] for item in yaml.safe_load(
        (ROOT / "config.yml").read_text(encoding="utf-8"))["languages"]},
    "topic": {"elderly_care", "health", "housing", "safety", "social_security",
              "community_events"},
    "service_type": {"elderly_canteen", "clinic", "pharmacy", "legal_aid", "mediation",
                     "volunteer_team", "service_hall"},
}
ANNOTATION = re.compile(r"\[([^\]]+)\]\((\w+)(?::([\w]+))?\)")


def examples(block: str) -> list[str]:
    return [line.strip()[2:].strip() for line in block.splitlines() if line.strip().startswith("- ")]


def plain(text: str) -> str:
    return ANNOTATION.sub(lambda m: m.group(1), text).casefold().strip()


def bare(text: str) -> str:
    """Without punctuation, spaces or case: `lift broken!` and `Lift broken` are one message.

    Symbols stay: 😀😀 and 🙂🙂 are two messages.
    """
    return "".join(ch for ch in plain(text) if unicodedata.category(ch)[0] not in "PZC")


def load(path: Path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert str(data.get("version")) == "3.1", f"{path}: version must be \"3.1\""
    intents, synonyms, lookups = {}, {}, {}
    for item in data["nlu"]:
        if "intent" in item:
            intents.setdefault(item["intent"], []).extend(examples(item["examples"]))
        elif "synonym" in item:
            synonyms.setdefault(item["synonym"], []).extend(examples(item["examples"]))
        elif "lookup" in item:
            lookups.setdefault(item["lookup"], []).extend(examples(item["examples"]))
    return intents, synonyms, lookups


def main(language: str, min_train: int, min_test: int) -> int:
    problems = []
    train, synonyms, lookups = load(ROOT / "nlu" / f"{language}.yml")
    test, _, _ = load(ROOT / "nlu" / "tests" / f"{language}.yml")
    synonym_of = {plain(s): canon for canon, forms in synonyms.items() for s in forms}
    for name, data, minimum in (("train", train, min_train), ("test", test, min_test)):
        for intent in INTENTS:
            n = len(data.get(intent, []))
            if n < minimum:
                problems.append(f"{name}: {intent} has {n} examples, needs {minimum}")
        for intent in set(data) - set(INTENTS):
            problems.append(f"{name}: unknown intent {intent}")
        for intent, texts in data.items():
            for text, count in Counter(plain(t) for t in texts).items():
                if count > 1:
                    problems.append(f"{name}: {intent}: duplicate {text!r}")
            for text in texts:
                for surface, entity, value in ANNOTATION.findall(text):
                    if entity not in (*VALUES, "request_id"):
                        problems.append(f"{name}: unknown entity {entity} in {text!r}")
                    elif entity in VALUES:
                        canon = value or synonym_of.get(surface.casefold())
                        if canon not in VALUES[entity]:
                            problems.append(f"{name}: {surface!r} ({entity}) has no synonym "
                                            f"entry mapping it to a canonical value")
    for canon in synonyms:
        if not any(canon in values for values in VALUES.values()):
            problems.append(f"synonym: {canon!r} is not a canonical value")
    for entity, forms in lookups.items():
        if entity == "emergency_keyword":  # matched as plain text by nlu/keywords.py
            continue
        if entity not in VALUES:
            problems.append(f"lookup: unknown entity {entity}")
        for form in forms:
            if plain(form) not in synonym_of:
                problems.append(f"lookup {entity}: {form!r} has no synonym entry")
    # Where a training example equals a held-out message, only the training example's place is
    # named: whoever writes training data must not see the held-out sets through this tool.
    train_texts = {bare(t): f"{intent} #{i + 1}" for intent, texts in train.items()
                   for i, t in enumerate(texts)}
    for texts in test.values():
        for text in texts:
            if bare(text) in train_texts:
                problems.append(f"train: example {train_texts[bare(text)]} (intent, number) "
                                "equals a message of the long held-out set: remove it")
    short_path = ROOT / "nlu" / "tests" / f"{language}-short.yml"
    if short_path.is_file():  # the short held-out set (issue 12): not every intent, no copies
        short, _, _ = load(short_path)
        test_texts = {bare(t) for texts in test.values() for t in texts}
        for intent, texts in short.items():
            if intent not in INTENTS:
                problems.append(f"short: unknown intent {intent}")
            for text, count in Counter(bare(t) for t in texts).items():
                if count > 1:
                    problems.append(f"short: {intent}: duplicate {text!r}")
            for text in texts:
                if bare(text) in train_texts:
                    problems.append(f"train: example {train_texts[bare(text)]} (intent, "
                                    "number) equals a message of the short held-out set: remove it")
                if bare(text) in test_texts:
                    problems.append(f"short: {intent}: also in the long test set: {text!r}")
    print("\n".join(problems) or "ok")
    print(f"train {sum(map(len, train.values()))} examples, test {sum(map(len, test.values()))}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
