"""CLINC150 ("Full") with Linli's NLU pipeline, compared with Larson et al. 2019, Table 2.

    .venv/bin/python bench/clinc150.py > clinc150.md

Two set-ups, as in the paper: out-of-scope as its own intent (trained on `oos_train`), and
out-of-scope by a confidence threshold (trained on in-scope only; the threshold is chosen on
`val` + `oos_val`, never on `test`). Prints a Markdown table; progress on standard error.

    .venv/bin/python bench/clinc150.py threshold     # only the threshold set-up (or: intent)
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from common import (
    SHARED,
    intent_classifier,
    parse_all,
    peak_rss_mb,
    train_and_load,
    write_rasa_data,
)

DATA = SHARED / "clinc150" / "data_full.json"
PAPER = [
    ("Rasa (paper)", "oos as an intent", 91.5, 45.3),
    ("BERT (paper)", "oos as an intent", 96.9, 40.3),
    ("Rasa (paper)", "threshold", 90.9, 31.2),
    ("BERT (paper)", "threshold", 96.2, 52.3),
]


def group(pairs: list[list[str]]) -> dict[str, list[str]]:
    examples: dict[str, list[str]] = {}
    for text, intent in pairs:
        examples.setdefault(intent, []).append(text)
    return examples


def scores(rankings, gold: list[str], threshold: float = 0.0) -> tuple[float, float]:
    """(in-scope accuracy, out-of-scope recall) in percent."""
    predicted = [r[0][0] if r[0][1] >= threshold else "oos" for r in rankings]
    inscope = [(p, g) for p, g in zip(predicted, gold) if g != "oos"]
    oos = [p for p, g in zip(predicted, gold) if g == "oos"]
    return (100 * sum(p == g for p, g in inscope) / len(inscope),
            100 * sum(p == "oos" for p in oos) / len(oos))


def weights(agent):
    """Sets the classifier's encoder weight to the pipeline's, then 0 (n-grams only)."""
    classifier = intent_classifier(agent)
    chosen = classifier.config["encoder_weight"]
    for name, weight in (("", chosen), (", n-grams only", 0.0)):
        classifier.config["encoder_weight"] = weight
        classifier.config["encoder_weight_by_script"] = {}  # CLINC150 is English only
        print(f"scoring{name or ' with the encoder'}…", file=sys.stderr)
        yield name, weight


def main(setups: list[str]) -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    test = data["test"] + data["oos_test"]
    gold = [intent for _, intent in test]
    rows = []
    with tempfile.TemporaryDirectory(prefix="linli-clinc-") as tmp:
        folder = Path(tmp)
        if "intent" in setups:  # 1. Out-of-scope as an intent.
            train_file = folder / "train_oos.yml"
            write_rasa_data(train_file, group(data["train"] + data["oos_train"]))
            print("training with oos as an intent…", file=sys.stderr)
            agent, seconds = train_and_load(folder, train_file, "clinc-oos")
            for name, weight in weights(agent):
                accuracy, recall = scores(parse_all(agent, [t for t, _ in test]), gold)
                rows.append((f"Linli{name}", "oos as an intent", accuracy, recall, seconds))
            del agent
        if "threshold" in setups:  # 2. Threshold, chosen on validation data.
            train_file = folder / "train.yml"
            write_rasa_data(train_file, group(data["train"]))
            print("training on in-scope only…", file=sys.stderr)
            agent, seconds = train_and_load(folder, train_file, "clinc-threshold")
            val = data["val"] + data["oos_val"]
            val_gold = [intent for _, intent in val]
            for name, weight in weights(agent):
                val_rankings = parse_all(agent, [t for t, _ in val])
                candidates = [i / 100 for i in range(1, 100)]
                on_val = {th: scores(val_rankings, val_gold, th) for th in candidates}
                best = max(candidates, key=lambda th: sum(on_val[th]))
                # The target's operating point: best in-scope accuracy, >= 60 oos recall on val.
                reaching = [th for th in candidates if on_val[th][1] >= 60] or [best]
                target = max(reaching, key=lambda th: on_val[th][0])
                test_rankings = parse_all(agent, [t for t, _ in test])
                for th, why in ((best, "max. sum on val"), (target, "recall ≥ 60 on val")):
                    accuracy, recall = scores(test_rankings, gold, th)
                    rows.append((f"Linli{name} (threshold {th:.2f}, {why})", "threshold",
                                 accuracy, recall, seconds))
    print("| system | out-of-scope by | in-scope accuracy | out-of-scope recall | training s |")
    print("|---|---|---|---|---|")
    for name, how, accuracy, recall, seconds in rows:
        print(f"| {name} | {how} | {accuracy:.1f} | {recall:.1f} | {seconds:.0f} |")
    for name, how, accuracy, recall in PAPER:
        print(f"| {name} | {how} | {accuracy:.1f} | {recall:.1f} | — |")
    print(f"\npeak resident memory of the benchmark process: {peak_rss_mb():.0f} MB",
          file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:] or ["intent", "threshold"])
