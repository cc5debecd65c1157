"""Linli's pipeline with and without the sentence encoder, on both held-out sets.

    .venv/bin/linli nlu train && .venv/bin/python bench/nlu_encoder.py > encoder.md

Loads the model `linli nlu train` left and scores it twice: as trained ("with"), and with the
classifier's `encoder_weight` set to 0 ("without"): the n-gram model alone, which is exactly the
pipeline before the encoder (same features, same C, same data) at the same fallback threshold.
Both on nlu/tests/<language>.yml (long) and nlu/tests/<language>-short.yml (short): top-1
accuracy, top-1 macro-F1 and the fallback rate; then the tables `linli nlu test` prints for
the model as trained. Progress on standard error.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import intent_classifier

from bot.config import load_config
from nlu.engine import RasaUnderstander, model_path, quiet_rasa
from nlu.evaluate import TEST_SETS, evaluate, report


def main() -> None:
    quiet_rasa()
    config = load_config()
    path = model_path(config)
    if not path.is_file():
        raise SystemExit(f"no model {path.name}: run `linli nlu train` first")
    understander = RasaUnderstander(config, path)
    classifier = intent_classifier(understander.agent)
    scores = {}
    by_script = classifier.config.get("encoder_weight_by_script") or {}
    for name, weight, scripts in (("with", classifier.config["encoder_weight"], by_script),
                                  ("without", 0.0, {})):
        classifier.config["encoder_weight"] = weight
        classifier.config["encoder_weight_by_script"] = scripts
        print(f"scoring {name} the encoder…", file=sys.stderr)
        for kind in TEST_SETS:
            for score in evaluate(understander, config, kind):
                scores[name, kind, score.language] = score
    print(f"model `{path.name}`\n")
    print("| language | set | examples | top-1 accuracy without → with | top-1 macro-F1 without → "
          "with | fallback rate without → with |")
    print("|---|---|---|---|---|---|")
    for kind in TEST_SETS:
        for language in config.language_ids:
            a, b = scores["without", kind, language], scores["with", kind, language]
            print(f"| {language} | {kind} | {a.total} | {a.accuracy_top:.3f} → "
                  f"{b.accuracy_top:.3f} | {a.macro_f1(top=True):.3f} → "
                  f"{b.macro_f1(top=True):.3f} | {a.fallbacks / a.total:.3f} → "
                  f"{b.fallbacks / b.total:.3f} |")
    for kind in TEST_SETS:  # what `linli nlu test` prints for this model
        print(f"\n`linli nlu test`, {kind} set\n")
        print(report([scores["with", kind, language] for language in config.language_ids]))


if __name__ == "__main__":
    main()
