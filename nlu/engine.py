"""Training (cached by the hash of data and pipeline), loading and parsing with Rasa NLU."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from bot.config import PROJECT_ROOT, Config
from bot.messages import Understanding
from nlu.keywords import EmergencyKeywords

log = logging.getLogger(__name__)

NLU_DIR = PROJECT_ROOT / "nlu"
PIPELINE = NLU_DIR / "pipeline.yml"
COMMON_FILE = NLU_DIR / "common.yml"
FALLBACK = "nlu_fallback"
TRACKING = re.compile(r"[Rr]\s*[-－‐]?\s*(\d{6})")


class NoModel(Exception):
    """No trained model exists yet."""


def quiet_rasa() -> None:
    """Rasa and TensorFlow log user text at DEBUG and chatter at INFO: keep them at WARNING."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Rasa's training cache, by default ./.rasa of whatever folder one runs from.
    os.environ.setdefault("RASA_CACHE_DIRECTORY", str(PROJECT_ROOT / "var" / "rasa-cache"))
    os.environ.setdefault("LOG_LEVEL_LIBRARIES", "ERROR")
    for name in ("rasa", "tensorflow", "absl", "h5py", "matplotlib", "jieba", "sanic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="rasa")
    # Rasa 3.6 also logs through structlog, which by default prints every level to standard
    # output, message text included (`parse_data_text=`): keep it at WARNING, on stderr.
    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


def training_files(config: Config) -> list[Path]:
    files = [NLU_DIR / f"{language}.yml" for language in config.language_ids]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"no NLU training data: {', '.join(missing)}")
    return [*files, COMMON_FILE]


def fallback_threshold(pipeline: Path = PIPELINE) -> float:
    """The FallbackClassifier's threshold: a message whose best intent is below it is sent to
    "Did you mean…" (and listed for staff as not understood)."""
    import yaml

    steps = yaml.safe_load(pipeline.read_text(encoding="utf-8"))["pipeline"]
    return float(next(s for s in steps if s["name"] == "FallbackClassifier")["threshold"])


def data_hash(config: Config, pipeline: Path = PIPELINE) -> str:
    """Changes whenever the training data, the pipeline, our components, Rasa or the sentence
    encoder (installed or not) changes."""
    import rasa

    from nlu.encoder import encoder_version

    digest = hashlib.sha256()
    code = [Path(__file__).with_name(name) for name in ("components.py", "encoder.py", "normalise.py")]
    for path in [pipeline, *code, *training_files(config)]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(rasa.__version__.encode())
    digest.update(encoder_version().encode())
    return digest.hexdigest()[:16]


def models_dir(config: Config) -> Path:
    return Path(os.environ.get("LINLI_MODELS_DIR") or PROJECT_ROOT / "var" / "models")


def model_path(config: Config) -> Path:
    return models_dir(config) / f"nlu-{data_hash(config)}.tar.gz"


def find_model(config: Config) -> Path:
    """The model for the current data, else the newest one trained (with a warning)."""
    current = model_path(config)
    if current.is_file():
        return current
    older = sorted(models_dir(config).glob("nlu-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if older:
        log.warning("the NLU data changed since %s was trained: run `linli nlu train`", older[-1])
        return older[-1]
    raise NoModel("no trained NLU model: run `linli nlu train` first")


def train(config: Config, force: bool = False, pipeline: Path = PIPELINE,
          files: list[Path] | None = None, output: Path | None = None) -> tuple[Path, bool]:
    """Trains unless a model for exactly this data exists. Returns (path, trained_now)."""
    quiet_rasa()
    files = files or training_files(config)
    if output is None:
        output = model_path(config)
    if output.is_file() and not force:
        return output, False
    from rasa.model_training import train_nlu

    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="linli-nlu-") as folder:
        for path in files:  # only these: nlu/tests/ must never be trained on
            shutil.copy(path, Path(folder) / path.name)
        started = time.monotonic()
        with contextlib.redirect_stdout(sys.stderr):  # Rasa prints its progress to stdout
            trained = train_nlu(
                config=str(pipeline),
                nlu_data=folder,
                output=str(output.parent),
                fixed_model_name=output.name.removesuffix(".tar.gz"),
            )
    if not trained:
        raise RuntimeError("Rasa did not produce a model; see the messages above")
    log.info("trained %s in %.0f s", output.name, time.monotonic() - started)
    return Path(trained), True


class RasaUnderstander:
    """A loaded Rasa NLU model, plus the emergency keyword lists that back it up."""

    def __init__(self, config: Config, path: Path | None = None):
        quiet_rasa()
        from rasa.core.agent import Agent

        self.path = path or find_model(config)
        started = time.monotonic()
        self.agent = Agent.load(str(self.path))
        self.load_seconds = time.monotonic() - started
        self.keywords = EmergencyKeywords(config)

    async def parse(self, text: str, language: str | None = None) -> Understanding:
        """`language` is not given to the model: one model reads all six languages
        (docs/nlu.md), which is also why Rasa's HTTP server, given only the text, answers
        the same (nlu/remote.py)."""
        result = await self.agent.parse_message(text)
        return understanding_from(result, text, self.keywords)


def understanding_from(result: dict, text: str, keywords: EmergencyKeywords) -> Understanding:
    """Rasa's parse result (in-process, or the JSON of its `/model/parse`) as Linli reads it:
    the fallback's confidence is the best real guess's, the ranking leaves the fallback out,
    entities are normalised, and an emergency keyword wins over the model."""
    ranking = [
        (item["name"], float(item["confidence"]))
        for item in result.get("intent_ranking", [])
        if item["name"] != FALLBACK
    ]
    intent = result["intent"]["name"] or FALLBACK
    confidence = float(result["intent"].get("confidence") or 0.0)
    if intent == FALLBACK and ranking:
        confidence = ranking[0][1]
    entities = normalise_entities(result.get("entities", []))
    if keywords.match(text):
        intent, confidence = "emergency", 1.0
    return Understanding(intent, confidence, entities, ranking)


def normalise_entities(raw: list[dict]) -> list[dict]:
    """One entry per entity and value, tracking numbers written as R-nnnnnn.

    A match inside a longer match of the same entity is dropped: 繁體中文 is zh_Hant, not
    also the zh_Hans of the 中文 inside it.
    """
    seen, entities = set(), []
    spans = [(e["entity"], e.get("start", 0), e.get("end", 0)) for e in raw]
    for item in sorted(raw, key=lambda e: (e.get("start", 0), -(e.get("end", 0)))):
        name, value = item["entity"], str(item["value"])
        start, end = item.get("start", 0), item.get("end", 0)
        if any(n == name and s <= start and end <= e and (s, e) != (start, end)
               for n, s, e in spans):
            continue
        if name == "request_id":
            match = TRACKING.search(value)
            if not match:
                continue
            value = f"R-{match.group(1)}"
        if (name, value) not in seen:
            seen.add((name, value))
            entities.append({"entity": name, "value": value})
    return entities
