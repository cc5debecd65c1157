"""Reads and checks the YAML files staff write for notices and polls; errors name file and key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import yaml

from bot.config import Config, ConfigError, _Checker

NOTICE_PARTS = ("title", "summary", "body")
POLL_PARTS = ("question", "background")
MAX_TITLE = 120
MAX_OPTION = 80
MAX_OPTIONS = 9  # one digit each: "vote by number" stays one key press


class SpecError(ConfigError):
    """A notice or poll file that cannot be used, naming the file and the key at fault."""


@dataclass(frozen=True)
class NoticeSpec:
    topic: str
    texts: dict[str, dict[str, str]]  # language -> {"title", "summary", "body"}
    expires_at: datetime | None  # naive UTC
    source: str


@dataclass(frozen=True)
class PollSpec:
    texts: dict[str, dict[str, str]]  # language -> {"question", "background"}
    options: list[dict]  # [{"id", "text": {language: label}}]
    buildings: list[str]
    allow_change: bool
    opens_at: datetime | None
    closes_at: datetime
    source: str


class _SpecChecker(_Checker):
    def fail(self, key: str, problem: str) -> SpecError:
        return SpecError(f"{self.path}: {key}: {problem}")


def _read(path: Path) -> tuple[_SpecChecker, dict]:
    check = _SpecChecker(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    return check, check.mapping(raw, "(top level)")


def _unknown_keys(check: _Checker, raw: dict, known: set[str], where: str = "") -> None:
    unknown = sorted(set(raw) - known, key=str)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else str(unknown[0])
        raise check.fail(key, f"unknown key (known: {', '.join(sorted(known))})")


def _per_language(check: _Checker, raw: Any, key: str, parts: tuple[str, ...],
                  config: Config) -> dict[str, dict[str, str]]:
    """{language: {part: text}}: the default language required, the others optional."""
    raw = check.mapping(raw, key)
    unknown = sorted(set(raw) - set(config.language_ids), key=str)
    if unknown:
        raise check.fail(f"{key}.{unknown[0]}",
                         f"not a language of config.yml ({', '.join(config.language_ids)})")
    if config.default_language not in raw:
        raise check.fail(f"{key}.{config.default_language}",
                         "missing: the default language is required (others are optional)")
    texts = {}
    for language in config.language_ids:
        if language not in raw:
            continue
        entry = check.mapping(raw[language], f"{key}.{language}")
        _unknown_keys(check, entry, set(parts), f"{key}.{language}")
        texts[language] = {part: check.text(entry.get(part), f"{key}.{language}.{part}")
                           for part in parts}
    return texts


def _moment(check: _Checker, value: Any, key: str, config: Config,
            end_of_day: bool = False) -> datetime | None:
    """A date or date and time in the community's time zone, as naive UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise check.fail(key, f"{value!r} is not a date such as 2026-12-01 or "
                                  "2026-12-01 18:00") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(23, 59) if end_of_day else time(0, 0))
    if not isinstance(value, datetime):
        raise check.fail(key, "must be a date such as 2026-12-01 or 2026-12-01 18:00")
    if value.tzinfo is None:
        value = value.replace(tzinfo=config.tz)
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def load_notice(path: Path, config: Config) -> NoticeSpec:
    """A notice file: topic, texts per language (title, summary, body), optional expiry."""
    path = Path(path)
    check, raw = _read(path)
    _unknown_keys(check, raw, {"topic", "expires", "texts"})
    topic = check.identifier(raw.get("topic"), "topic")
    topics = [t.id for t in config.notice_topics]
    if topic not in topics:
        raise check.fail("topic", f"{topic!r} is not a notice topic of config.yml "
                                  f"({', '.join(topics)})")
    texts = _per_language(check, raw.get("texts"), "texts", NOTICE_PARTS, config)
    for language, parts in texts.items():
        if len(parts["title"]) > MAX_TITLE:
            raise check.fail(f"texts.{language}.title", f"longer than {MAX_TITLE} characters")
    return NoticeSpec(topic=topic, texts=texts,
                      expires_at=_moment(check, raw.get("expires"), "expires", config, True),
                      source=str(path))


def load_poll(path: Path, config: Config) -> PollSpec:
    """A poll file: texts and options per language, times, eligibility, allow_change."""
    path = Path(path)
    check, raw = _read(path)
    _unknown_keys(check, raw, {"texts", "options", "opens", "closes", "eligible",
                               "allow_change"})
    texts = _per_language(check, raw.get("texts"), "texts", POLL_PARTS, config)
    options, seen = [], set()
    items = check.sequence(raw.get("options"), "options")
    if not 2 <= len(items) <= MAX_OPTIONS:
        raise check.fail("options", f"needs 2 to {MAX_OPTIONS} options")
    for i, item in enumerate(items):
        key = f"options[{i}]"
        item = check.mapping(item, key)
        _unknown_keys(check, item, {"id", "text"}, key)
        option_id = check.identifier(item.get("id"), f"{key}.id")
        if option_id in seen:
            raise check.fail(f"{key}.id", f"{option_id!r} is listed twice")
        seen.add(option_id)
        labels = check.mapping(item.get("text"), f"{key}.text")
        unknown = sorted(set(labels) - set(config.language_ids), key=str)
        if unknown:
            raise check.fail(f"{key}.text.{unknown[0]}", "not a language of config.yml")
        for language in texts:  # every language the question is written in
            if language not in labels:
                raise check.fail(f"{key}.text.{language}",
                                 "missing: the question is written in this language")
        text = {}
        for language in config.language_ids:
            if language in labels:
                text[language] = check.text(labels[language], f"{key}.text.{language}")
                if len(text[language]) > MAX_OPTION:
                    raise check.fail(f"{key}.text.{language}",
                                     f"longer than {MAX_OPTION} characters")
        options.append({"id": option_id, "text": text})

    closes_at = _moment(check, raw.get("closes"), "closes", config, end_of_day=True)
    if closes_at is None:
        raise check.fail("closes", "missing: when the poll closes, e.g. 2026-12-15 18:00")
    opens_at = _moment(check, raw.get("opens"), "opens", config)
    if opens_at is not None and opens_at >= closes_at:
        raise check.fail("closes", "must be after `opens`")

    eligible = raw.get("eligible", "all")
    buildings: list[str] = []
    if eligible != "all":
        eligible = check.mapping(eligible, "eligible")
        _unknown_keys(check, eligible, {"buildings"}, "eligible")
        buildings = [check.text(b, f"eligible.buildings[{i}]")
                     for i, b in enumerate(check.sequence(eligible.get("buildings"),
                                                          "eligible.buildings"))]
    allow_change = raw.get("allow_change", False)
    if not isinstance(allow_change, bool):
        raise check.fail("allow_change", "must be true or false")
    return PollSpec(texts=texts, options=options, buildings=buildings,
                    allow_change=allow_change, opens_at=opens_at, closes_at=closes_at,
                    source=str(path))
