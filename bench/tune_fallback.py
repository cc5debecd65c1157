"""Tunes the FallbackClassifier's thresholds on data: a validation split of the training files.

    .venv/bin/python bench/tune_fallback.py > fallback.md

Holds out every fifth example of each intent in each nlu/<language>.yml (the held-out test sets
under nlu/tests/ are not touched), trains Linli's pipeline on the rest, and scores each pair of
(threshold, ambiguity threshold) with a cost model of what the resident experiences:

    answered correctly  +1     (one step)
    "Did you mean…"     +0.5   (one more tap; the right intent is usually one of the two guesses)
    answered wrongly    -1     (a wrong flow, to be backed out of)

Prints the table and the best pair; copy it into nlu/pipeline.yml and docs/nlu.md.

    .venv/bin/python bench/tune_fallback.py --C 1 5 20

compares values of the classifier's regularisation strength C on the same split (one training
each): the best threshold, utility and top-1 accuracy for each.

The default run trains once and first compares weights of the sentence encoder's model
against the n-gram model (`encoder_weight`; 0 is the n-gram model alone, i.e. the pipeline
before the encoder), then tunes the thresholds at the best weight. It also chooses the threshold above which `delete_my_data` (irreversible) is acted
on from free text: the lowest one at which no held-out message of another intent is taken for it
(precision 1.0 on validation), plus a margin of 0.05.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import yaml
from common import intent_classifier, parse_all, train_and_load

from bot.config import load_config
from nlu.engine import COMMON_FILE, NLU_DIR
from nlu.evaluate import ANNOTATION

THRESHOLDS = [round(0.05 * i, 2) for i in range(19)]
AMBIGUITY = [0.0, 0.02, 0.05, 0.1]


def split(language: str, folder: Path) -> list[tuple[str, str]]:
    """Writes the training part of one language's file; returns the held-out (text, intent)."""
    data = yaml.safe_load((NLU_DIR / f"{language}.yml").read_text(encoding="utf-8"))
    held_out = []
    kept_items = []
    for item in data["nlu"]:
        if "intent" not in item:
            kept_items.append(item)
            continue
        lines = [line for line in item["examples"].splitlines() if line.strip().startswith("- ")]
        keep = []
        for i, line in enumerate(lines):
            if i % 5 == 4:
                text = ANNOTATION.sub(lambda m: m.group(1), line.strip()[2:].strip())
                held_out.append((text, item["intent"]))
            else:
                keep.append(line.strip())
        kept_items.append({"intent": item["intent"], "examples": "\n".join(keep) + "\n"})
    out = {"version": "3.1", "nlu": kept_items}
    (folder / f"{language}.yml").write_text(
        yaml.safe_dump(out, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")
    return held_out


def utility(rankings, gold, threshold: float, ambiguity: float) -> tuple[float, float, float]:
    """(mean utility, share answered, accuracy of what was answered)."""
    total = answered = correct = 0.0
    for ranking, intent in zip(rankings, gold):
        (top, p1), p2 = ranking[0], (ranking[1][1] if len(ranking) > 1 else 0.0)
        if p1 < threshold or p1 - p2 < ambiguity:
            total += 0.5
            continue
        answered += 1
        if top == intent:
            correct += 1
            total += 1
        else:
            total -= 1
    n = len(gold)
    return total / n, answered / n, (correct / answered if answered else 0.0)


def with_c(pipeline: Path, c: float) -> None:
    """Rewrites the classifier's C in a benchmark copy of the pipeline."""
    text = pipeline.read_text(encoding="utf-8")
    text, count = re.subn(r"(\n    C: )[0-9.]+", rf"\g<1>{c}", text)
    if count != 1:
        raise SystemExit("the pipeline has no `C:` line to vary")
    pipeline.write_text(text, encoding="utf-8")


IRREVERSIBLE = "delete_my_data"
MARGIN = 0.05


def irreversible_threshold(rankings, gold, intent: str = IRREVERSIBLE) -> None:
    """Prints precision and recall of acting on `intent` above each threshold, and the choice."""
    def counts(threshold):
        acted = [(r[0][0] == intent and r[0][1] >= threshold, g == intent)
                 for r, g in zip(rankings, gold)]
        tp = sum(a and t for a, t in acted)
        fp = sum(a and not t for a, t in acted)
        return tp, fp, sum(t for _, t in acted)

    wrong = [r[0][1] for r, g in zip(rankings, gold) if r[0][0] == intent and g != intent]
    safe = min(1.0, round((max(wrong) if wrong else 0.0) + MARGIN, 2))
    print(f"\n`{intent}` taken from free text (validation, {sum(g == intent for g in gold)} "
          f"examples of it, {len(wrong)} other messages ranked it first):\n")
    print("| threshold | acted on | of which wrong | precision | recall |")
    print("|---|---|---|---|---|")
    for threshold in sorted({0.5, 0.65, 0.8, 0.9, 0.95, safe}):
        tp, fp, total = counts(threshold)
        precision = tp / (tp + fp) if tp + fp else 1.0
        mark = " **chosen**" if threshold == safe else ""
        print(f"| {threshold:.2f}{mark} | {tp + fp} | {fp} | {precision:.3f} | "
              f"{tp / total if total else 0:.3f} |")
    print(f"\nchosen: {safe:.2f} (highest confidence of a wrong `{intent}` "
          f"{max(wrong) if wrong else 0:.3f}, plus {MARGIN})")


def rank_held_out(config, adjust=None, weights=None):
    """Trains on four fifths of the training files; the intent rankings of the held-out fifth
    and their true intents. With `weights`: {weight: rankings} for each encoder weight."""
    with tempfile.TemporaryDirectory(prefix="linli-tune-") as tmp:
        folder = Path(tmp)
        held_out = []
        for language in config.language_ids:
            part = split(language, folder)
            held_out += part
            LANGUAGES.extend([language] * len(part))
        (folder / COMMON_FILE.name).write_text(COMMON_FILE.read_text(encoding="utf-8"),
                                               encoding="utf-8")
        print(f"training on the rest; {len(held_out)} held out…", file=sys.stderr)
        files = sorted(folder.glob("*.yml"))
        agent, _ = train_and_load(folder, files, "tune", adjust=adjust)
        texts = [t for t, _ in held_out]
        TEXTS[:] = texts
        if weights is None:
            rankings = parse_all(agent, texts)
        else:
            classifier = intent_classifier(agent)
            rankings = {}
            for weight in weights:
                classifier.config["encoder_weight"] = weight
                rankings[weight] = parse_all(agent, texts)
    return rankings, [intent for _, intent in held_out]


def compare(name: str, values: list[str], adjust) -> None:
    config = load_config()
    print(f"| {name} | best threshold | utility | answered | top-1 accuracy |")
    print("|---|---|---|---|---|")
    for c in values:
        rankings, gold = rank_held_out(config, adjust=lambda p, c=c: adjust(p, c))
        best = max(((th, *utility(rankings, gold, th, 0.0)) for th in THRESHOLDS),
                   key=lambda r: r[1])
        top1 = sum(r[0][0] == g for r, g in zip(rankings, gold)) / len(gold)
        print(f"| {c} | {best[0]:.2f} | {best[1]:.3f} | {best[2]:.3f} | {top1:.3f} |",
              flush=True)


WEIGHTS = [0.0, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 1.0]
LANGUAGES: list[str] = []  # the language of each held-out example, in order
TEXTS: list[str] = []  # and its text


def by_language(by_weight: dict, gold: list[str]) -> None:
    """Top-1 accuracy per language at each encoder weight (the per-script weights)."""
    languages = list(dict.fromkeys(LANGUAGES))
    print("\n| encoder weight | " + " | ".join(languages) + " |")
    print("|---|" + "---|" * len(languages))
    for weight, rankings in by_weight.items():
        cells = []
        for language in languages:
            pairs = [(r, g) for r, g, lang in zip(rankings, gold, LANGUAGES) if lang == language]
            cells.append(f"{sum(r[0][0] == g for r, g in pairs) / len(pairs):.3f}")
        print(f"| {weight:g} | " + " | ".join(cells) + " |")
    print()


def per_script(by_weight: dict, gold: list[str], weight: float):
    """The weight with the best top-1 for each script's held-out messages, where it is not
    `weight`; and the rankings as served with those weights."""
    from nlu.components import dominant_script

    scripts = [dominant_script(text) for text in TEXTS]
    chosen = {}
    for script in sorted(set(scripts) - {None}):
        def top1(w, script=script):
            rows = [(r, g) for r, g, s in zip(by_weight[w], gold, scripts) if s == script]
            return sum(r[0][0] == g for r, g in rows) / len(rows)
        best = max(by_weight, key=lambda w: (top1(w), w == weight))
        if best != weight:
            chosen[script] = best
    rankings = [by_weight[chosen.get(s, weight)][i] for i, s in enumerate(scripts)]
    return rankings, chosen


def main() -> None:
    if "--C" in sys.argv:
        compare("C", sys.argv[sys.argv.index("--C") + 1:], lambda p, c: with_c(p, float(c)))
        return
    by_weight, gold = rank_held_out(load_config(), weights=WEIGHTS)
    print("| encoder weight | best threshold | utility | answered | top-1 accuracy |")
    print("|---|---|---|---|---|")
    best_utility = {}
    for weight, rankings in by_weight.items():
        best = max(((th, *utility(rankings, gold, th, 0.0)) for th in THRESHOLDS),
                   key=lambda r: r[1])
        best_utility[weight] = best[1]
        top1 = sum(r[0][0] == g for r, g in zip(rankings, gold)) / len(gold)
        print(f"| {weight:g} | {best[0]:.2f} | {best[1]:.3f} | {best[2]:.3f} | {top1:.3f} |")
    by_language(by_weight, gold)
    weight = max(WEIGHTS, key=lambda w: best_utility[w])
    print(f"\nbest encoder weight: {weight:g}")
    rankings, by_script = per_script(by_weight, gold, weight)
    print(f"per script (`encoder_weight_by_script`, where the best top-1 differs): {by_script}; "
          f"top-1 {sum(r[0][0] == g for r, g in zip(rankings, gold)) / len(gold):.3f}. "
          "Thresholds at these weights:\n")
    results = [(th, amb, *utility(rankings, gold, th, amb)) for th in THRESHOLDS for amb in AMBIGUITY]
    best = max(results, key=lambda r: r[2])
    print("| threshold | ambiguity | utility | answered | accuracy when answered |")
    print("|---|---|---|---|---|")
    for th, amb, score, answered, accuracy in results:
        if amb in (0.0, best[1]) or th == best[0]:
            mark = " **best**" if (th, amb) == best[:2] else ""
            print(f"| {th:.2f} | {amb:.2f} | {score:.3f}{mark} | {answered:.3f} | {accuracy:.3f} |")
    print(f"\nbest: threshold {best[0]:.2f}, ambiguity_threshold {best[1]:.2f} "
          f"({len(gold)} held-out training examples)")
    irreversible_threshold(rankings, gold)


if __name__ == "__main__":
    main()
