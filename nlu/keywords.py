"""Emergency keywords per language, so that an emergency never depends on the model alone."""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

import yaml

from bot.config import PROJECT_ROOT, Config
from nlu.normalise import normalise

NLU_DIR = PROJECT_ROOT / "nlu"
LOOKUP = "emergency_keyword"


def fold(text: str) -> str:
    return normalise(unicodedata.normalize("NFKC", text)).casefold()


def read_keywords(path: Path) -> list[str]:
    """The `emergency_keyword` lookup table of one nlu/<language>.yml (cached per version)."""
    return list(_read_keywords(path, path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=64)
def _read_keywords(path: Path, _version: int) -> tuple[str, ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
    for item in data.get("nlu", []):
        if item.get("lookup") == LOOKUP:
            return tuple(
                fold(line.strip()[2:].strip())
                for line in item["examples"].splitlines()
                if line.strip().startswith("- ") and line.strip()[2:].strip()
            )
    return ()


class EmergencyKeywords:
    """Matches any language's keywords: a resident in danger may not write in their own."""

    def __init__(self, config: Config, folder: Path = NLU_DIR):
        self.by_language = {
            language: read_keywords(folder / f"{language}.yml")
            for language in config.language_ids
            if (folder / f"{language}.yml").is_file()
        }
        self._all = sorted({k for words in self.by_language.values() for k in words})

    def match(self, text: str) -> bool:
        folded = fold(text)
        return any(keyword in folded for keyword in self._all)
