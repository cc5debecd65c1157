"""SIB-200 topic classification in Linli's six languages: our pipeline beside simple baselines.

    .venv/bin/python bench/sib200.py > sib200.md

For each language: train on `train.tsv`, score accuracy on `test.tsv`. Baselines, in the same
run: the majority class, and a character 1–3-gram TF-IDF multinomial naive Bayes (scikit-learn,
already installed with Rasa). "n-grams only" is the same trained model with the sentence
encoder's weight set to 0 (the pipeline before the encoder). Prints a Markdown table; progress on
standard error.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

from common import SHARED, intent_classifier, parse_all, train_and_load, write_rasa_data

LANGUAGES = {
    "zh_Hans": "zho_Hans", "zh_Hant": "zho_Hant", "en": "eng_Latn",
    "mn": "khk_Cyrl", "bo": "bod_Tibt", "ug": "uig_Arab",
}


def read(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [(row["text"], row["category"]) for row in csv.DictReader(f, delimiter="\t")]


def label_id(category: str) -> str:
    return category.replace("/", "_").replace(" ", "_")


def baselines(train: list[tuple[str, str]], test: list[tuple[str, str]]) -> tuple[float, float]:
    from collections import Counter

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB

    majority = Counter(c for _, c in train).most_common(1)[0][0]
    majority_accuracy = sum(c == majority for _, c in test) / len(test)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3))
    model = MultinomialNB().fit(vectorizer.fit_transform([t for t, _ in train]),
                                [c for _, c in train])
    predicted = model.predict(vectorizer.transform([t for t, _ in test]))
    nb_accuracy = sum(p == c for p, (_, c) in zip(predicted, test)) / len(test)
    return majority_accuracy, nb_accuracy


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="linli-sib-") as tmp:
        folder = Path(tmp)
        for language, code in LANGUAGES.items():
            train = read(SHARED / "sib200" / code / "train.tsv")
            test = read(SHARED / "sib200" / code / "test.tsv")
            examples: dict[str, list[str]] = {}
            for text, category in train:
                examples.setdefault(label_id(category), []).append(text)
            data = folder / f"{language}.yml"
            write_rasa_data(data, examples)
            print(f"{language}: training on {len(train)} sentences…", file=sys.stderr)
            agent, seconds = train_and_load(folder, data, f"sib-{language}")
            accuracy = {}
            classifier = intent_classifier(agent)
            by_script = classifier.config.get("encoder_weight_by_script") or {}
            for name, weight, scripts in (("with", classifier.config["encoder_weight"], by_script),
                                          ("without", 0.0, {})):
                classifier.config["encoder_weight"] = weight
                classifier.config["encoder_weight_by_script"] = scripts
                rankings = parse_all(agent, [t for t, _ in test])
                accuracy[name] = sum(r[0][0] == label_id(c)
                                     for r, (_, c) in zip(rankings, test)) / len(test)
            majority, naive_bayes = baselines(train, test)
            rows.append((language, code, len(test), accuracy, naive_bayes, majority, seconds))
    print("| language | SIB-200 code | test sentences | Linli pipeline | n-grams only "
          "| char n-gram naive Bayes | majority class | training s |")
    print("|---|---|---|---|---|---|---|---|")
    for language, code, n, accuracy, naive_bayes, majority, seconds in rows:
        print(f"| {language} | {code} | {n} | {accuracy['with']:.3f} | {accuracy['without']:.3f} "
              f"| {naive_bayes:.3f} | {majority:.3f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
