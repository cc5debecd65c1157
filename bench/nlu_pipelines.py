"""Compares NLU pipelines on Linli's held-out sets: tokenizers, one model vs one per language.

    .venv/bin/python bench/nlu_pipelines.py [NAME ...]  > table.md

Trains each candidate on nlu/<language>.yml (never on nlu/tests/), scores the top-ranked intent
on nlu/tests/<language>.yml (macro-F1 per language, before any fallback threshold), and prints
a Markdown table with the training time. Progress goes to standard error.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_config
from nlu.engine import COMMON_FILE, NLU_DIR, RasaUnderstander, quiet_rasa, train
from nlu.evaluate import evaluate

HEAD = 'recipe: default.v1\nassistant_id: bench\nlanguage: xx\npipeline:\n'
WORDS = "  - name: CountVectorsFeaturizer\n"
CHARS = ("  - name: CountVectorsFeaturizer\n    analyzer: char_wb\n"
         "    min_ngram: 1\n    max_ngram: 4\n")
LOGREG = "  - name: LogisticRegressionClassifier\n    max_iter: 300\n"
LOGREG_C5 = ("  - name: nlu.components.TunedLogisticRegressionClassifier\n    C: 5\n"
             "    max_iter: 2000\n")
DIET = ("  - name: DIETClassifier\n    epochs: 40\n    entity_recognition: false\n"
        "    number_of_transformer_layers: 0\n    constrain_similarities: true\n"
        "    batch_size: [64, 256]\n    random_seed: 1\n")
WHITESPACE = "  - name: WhitespaceTokenizer\n"


def script(han: str = "jieba", tibetan: str = "syllable") -> str:
    return f"  - name: nlu.components.ScriptTokenizer\n    han: {han}\n    tibetan: {tibetan}\n"


# name: (pipeline, one model per language?)
CANDIDATES = {
    "whitespace, words": (HEAD + WHITESPACE + WORDS + LOGREG, False),
    "whitespace, words + char 1-4": (HEAD + WHITESPACE + WORDS + CHARS + LOGREG, False),
    "script (Han: Jieba, bo: syllables), words": (HEAD + script() + WORDS + LOGREG, False),
    "script (Han: Jieba, bo: syllables), words + char 1-4":
        (HEAD + script() + WORDS + CHARS + LOGREG, False),
    "script (Han: characters, bo: syllables), words + char 1-4":
        (HEAD + script("char") + WORDS + CHARS + LOGREG, False),
    "script, words + char 1-4, logistic regression C=5 (chosen)":
        (HEAD + script() + WORDS + CHARS + LOGREG_C5, False),
    "per-language models, script, words + char 1-4":
        (HEAD + script() + WORDS + CHARS + LOGREG, True),
    "script, words + char 1-4, DIET (40 epochs) instead of logistic regression":
        (HEAD + script() + WORDS + CHARS + DIET, False),
}


def run(name: str, pipeline_text: str, per_language: bool, config, folder: Path) -> dict:
    pipeline = folder / "pipeline.yml"
    pipeline.write_text(pipeline_text, encoding="utf-8")
    started = time.monotonic()
    groups = [[lang] for lang in config.language_ids] if per_language else [config.language_ids]
    scores = {}
    train_seconds = 0.0
    for group in groups:
        files = [NLU_DIR / f"{lang}.yml" for lang in group] + [COMMON_FILE]
        output = folder / f"{'-'.join(group)}-{abs(hash(name))}.tar.gz"
        t0 = time.monotonic()
        path, _ = train(config, force=True, pipeline=pipeline, files=files, output=output)
        train_seconds += time.monotonic() - t0
        understander = RasaUnderstander(config, path)
        for score in evaluate(understander, config):
            if score.language in group:
                scores[score.language] = score.macro_f1(top=True)
    print(f"{name}: done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return {"scores": scores, "train": train_seconds}


def main(names: list[str]) -> None:
    quiet_rasa()
    config = load_config()
    chosen = {n: c for n, c in CANDIDATES.items() if not names or any(x in n for x in names)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="linli-bench-") as tmp:
        for name, (pipeline_text, per_language) in chosen.items():
            print(f"{name}: training…", file=sys.stderr)
            rows.append((name, run(name, pipeline_text, per_language, config, Path(tmp))))
    languages = config.language_ids
    print("| pipeline | " + " | ".join(languages) + " | mean | training s |")
    print("|---" * (len(languages) + 3) + "|")
    for name, result in rows:
        values = [result["scores"].get(lang, 0.0) for lang in languages]
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values)
              + f" | {sum(values) / len(values):.3f} | {result['train']:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
