"""A Rasa tokenizer for six scripts: Jieba words for Han, syllables for Tibetan, words elsewhere."""

from __future__ import annotations

import logging
from typing import Any

import regex
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

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
