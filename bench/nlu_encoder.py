"""Linli's pipeline with and without the sentence encoder, on both held-out sets.

    .venv/bin/linli nlu train && .venv/bin/python bench/nlu_encoder.py > encoder.md

"with": the model `linli nlu train` left for the current data (nlu/pipeline.yml as it is).
"without": the same pipeline minus `SentenceEncoderFeaturizer` (the pipeline before issue 12,
on today's training data), trained here. Both scored on nlu/tests/<language>.yml (long) and
nlu/tests/<language>-short.yml (short): top-1 accuracy, top-1 macro-F1 and the fallback rate at
each model's own threshold. Progress on standard error.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_config
from nlu.engine import PIPELINE, RasaUnderstander, model_path, quiet_rasa, train
from nlu.evaluate import TEST_SETS, evaluate


def without_encoder(folder: Path) -> Path:
    text = PIPELINE.read_text(encoding="utf-8")
    text, count = re.subn(r"\n  - name: nlu\.components\.SentenceEncoderFeaturizer\n(    .*\n)*",
                          "\n", text)
    if count != 1:
        raise SystemExit("nlu/pipeline.yml has no SentenceEncoderFeaturizer")
    path = folder / "pipeline.yml"
    path.write_text(text, encoding="utf-8")
    return path


def main() -> None:
    quiet_rasa()
    config = load_config()
    with_path = model_path(config)
    if not with_path.is_file():
        raise SystemExit(f"no model {with_path.name}: run `linli nlu train` first")
    scores = {}
    with tempfile.TemporaryDirectory(prefix="linli-encoder-") as tmp:
        print("training without the encoder…", file=sys.stderr)
        started = time.monotonic()
        without_path, _ = train(config, force=True, pipeline=without_encoder(Path(tmp)),
                                output=Path(tmp) / "without.tar.gz")
        print(f"trained in {time.monotonic() - started:.0f} s", file=sys.stderr)
        for name, path in (("without", without_path), ("with", with_path)):
            understander = RasaUnderstander(config, path)
            for kind in TEST_SETS:
                for score in evaluate(understander, config, kind):
                    scores[name, kind, score.language] = score
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


if __name__ == "__main__":
    main()
