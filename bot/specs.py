"""Reads and checks the YAML files staff write for notices, polls and area alerts; errors name
file and key."""

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
ALERT_PARTS = ("title", "body")
SEVERITIES = ("info", "warning", "danger")
MAX_ALERT_BODY = 600  # read aloud in full: a minute or so of speech
MAX_CHECK_MINUTES = 7 * 24 * 60
DEFAULT_CHECK_MINUTES = 60


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


@dataclass(frozen=True)
class AlertSpec:
    texts: dict[str, dict[str, str]]  # language -> {"title", "body"}
    severity: str  # info, warning, danger
    grids: list[str]  # config.yml grid ids; with `buildings` both empty: everyone
    buildings: list[str]  # bot.places.building_key of each
    check_after_minutes: int
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


def check_alert(check: _Checker, raw: dict, config: Config, source: str) -> AlertSpec:
    """An alert from its raw mapping (a file, or the console's form as the same keys)."""
    from bot.places import building_key  # bot.places imports bot.config's types only

    _unknown_keys(check, raw, {"texts", "severity", "target", "check_after_minutes"})
    texts = _per_language(check, raw.get("texts"), "texts", ALERT_PARTS, config)
    for language, parts in texts.items():
        if len(parts["title"]) > MAX_TITLE:
            raise check.fail(f"texts.{language}.title", f"longer than {MAX_TITLE} characters")
        if len(parts["body"]) > MAX_ALERT_BODY:
            raise check.fail(f"texts.{language}.body",
                             f"longer than {MAX_ALERT_BODY} characters")
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        raise check.fail("severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
    target = raw.get("target", "everyone")
    grids: list[str] = []
    buildings: list[str] = []
    if target != "everyone":
        target = check.mapping(target, "target")
        _unknown_keys(check, target, {"grids", "buildings"}, "target")
        if "grids" not in target and "buildings" not in target:
            raise check.fail("target", "name grids or buildings, or write `target: everyone`")
        known = [grid.id for grid in config.grids]
        listed_grids = check.sequence(target["grids"], "target.grids") \
            if "grids" in target else []
        for i, value in enumerate(listed_grids):
            grid_id = check.text(value, f"target.grids[{i}]")
            if grid_id not in known:
                raise check.fail(f"target.grids[{i}]", f"{grid_id!r} is not a grid of "
                                                       f"config.yml ({', '.join(known)})")
            grids.append(grid_id)
        listed_buildings = check.sequence(target["buildings"], "target.buildings") \
            if "buildings" in target else []
        for i, value in enumerate(listed_buildings):
            key = building_key(check.text(value, f"target.buildings[{i}]"))
            if config.building(key) is None:
                raise check.fail(f"target.buildings[{i}]",
                                 f"{value!r} is not a building of config.yml's grids")
            buildings.append(key)
    minutes = raw.get("check_after_minutes", DEFAULT_CHECK_MINUTES)
    if isinstance(minutes, bool) or not isinstance(minutes, int) \
            or not 1 <= minutes <= MAX_CHECK_MINUTES:
        raise check.fail("check_after_minutes",
                         f"must be a whole number of minutes from 1 to {MAX_CHECK_MINUTES}")
    return AlertSpec(texts=texts, severity=severity, grids=grids, buildings=buildings,
                     check_after_minutes=minutes, source=source)


def load_alert(path: Path, config: Config) -> AlertSpec:
    """An alert file: texts per language (title, body), severity, target, check time."""
    path = Path(path)
    check, raw = _read(path)
    return check_alert(check, raw, config, str(path))
