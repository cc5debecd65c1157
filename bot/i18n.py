"""Per-language gettext catalogs and Babel formatting of dates, with bidi isolation for RTL."""

from __future__ import annotations

import gettext
import io
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from babel import Locale, UnknownLocaleError, localedata
from babel.dates import format_date, format_time, get_datetime_format
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.config import Config

log = logging.getLogger(__name__)
DOMAIN = "messages"

# Unicode isolates: keep a left-to-right token (R-123456, a date, a number) whole inside
# right-to-left text, and mark the paragraph's direction for terminals that apply bidi.
LRI, RLI, PDI, RLM = "\u2066", "\u2067", "\u2069", "\u200f"


def N_(message: str) -> str:
    """Marks a string for extraction into the catalogs without translating it yet."""
    return message


def compile_catalogs(locales_dir: Path) -> list[Path]:
    """Writes messages.mo beside every messages.po that is newer than its .mo."""
    written = []
    for po_path in sorted(locales_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as f:
            catalog = read_po(f, locale=po_path.parent.parent.name)
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        mo_path.write_bytes(buffer.getvalue())
        written.append(mo_path)
    return written


def _load_translations(locales_dir: Path, language: str) -> gettext.NullTranslations:
    """Loads the compiled catalog; compiles in memory when the .mo is missing or stale."""
    po_path = locales_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo_path = po_path.with_suffix(".mo")
    if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
        with mo_path.open("rb") as f:
            return gettext.GNUTranslations(f)
    log.warning("catalog %s is not compiled or is stale; compiling it in memory", po_path)
    with po_path.open("rb") as f:
        catalog = read_po(f, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Translator:
    """Everything language-dependent for one resident's language."""

    def __init__(self, language: str, translations: gettext.NullTranslations, config: Config):
        self.language = language
        self._translations = translations
        self._config = config
        self._settings = config.language(language)
        self.locale = format_locale(config, language)
        self.rtl = self._settings.direction == "rtl"
        self._sources: dict[str, str] = {}

    def __call__(self, message: str, **values: object) -> str:
        """Translates `message` and fills its {fields}, isolating the values in RTL text."""
        text = self._translations.gettext(message)
        if values:
            return text.format(**{k: self.isolate(v) for k, v in values.items()})
        self._sources[text] = message
        return text

    def ngettext(self, singular: str, plural: str, count: int, **values: object) -> str:
        """The form of a message for `count` ("1 vote", "2 votes"), as this language's plural
        rule picks it; `{count}` and the other {fields} are filled as in __call__."""
        text = self._translations.ngettext(singular, plural, count)
        return text.format(**{k: self.isolate(v) for k, v in {"count": count, **values}.items()})

    def source_of(self, text: str) -> str | None:
        """The msgid a fixed message (one without fields) was translated from, if it was."""
        return self._sources.get(text)

    def isolate(self, value: object) -> str:
        """Wraps a value that is not itself RTL text so that bidi cannot scramble it."""
        text = str(value)
        if not self.rtl or not text:
            return text
        if any("\u0600" <= ch <= "\u06ff" for ch in text):
            return f"{RLI}{text}{PDI}"
        return f"{LRI}{text}{PDI}"

    def name(self, names: Mapping[str, str]) -> str:
        """Picks this language's entry of a config name map, else the default language's."""
        return names.get(self.language) or names[self._config.default_language]

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(self._config.tz)

    @property
    def _date_format(self) -> str:
        """The language's own `date_format` pattern if config.yml gives one; else CLDR's
        "medium" date, unless this locale's short month names carry digits of a
        script other than its numbers' (Tibetan: ཟླ་༣ beside the day 5): then the "long"
        one, which spells the month out."""
        if self._settings.date_format:
            return self._settings.date_format
        months = self.locale.months["format"]["abbreviated"].values()
        mixed = any(ch.isdigit() and not ch.isascii() for month in months for ch in month)
        return "long" if mixed else "medium"

    def datetime(self, moment: datetime) -> str:
        """A date and time in the community's time zone, as this locale writes it."""
        local = self._local(moment)
        size = "medium" if self._settings.date_format else self._date_format
        pattern = get_datetime_format(size, locale=self.locale)
        day = format_date(local, self._date_format, locale=self.locale)
        clock = format_time(local, self._settings.time_format or "short", locale=self.locale)
        return self.isolate(pattern.replace("{1}", day).replace("{0}", clock))

    def date(self, moment: datetime) -> str:
        return self.isolate(format_date(self._local(moment), self._date_format,
                                        locale=self.locale))


def format_locale(config: Config, language: str) -> Locale:
    """The Babel locale that writes `language`'s dates and numbers: its `format_locale` from
    config.yml, else the language itself when Babel has data for it, else the default
    language's (a locale Babel lacks must not stop a resident's turn). Plural forms are not
    taken from here: gettext reads them from the catalog's own Plural-Forms header."""
    chosen = config.language(language).format_locale
    for candidate in (chosen, language, config.language(config.default_language).format_locale,
                      config.default_language):
        if candidate and localedata.exists(candidate):
            try:
                return Locale.parse(candidate)
            except (UnknownLocaleError, ValueError):
                continue
    return Locale.parse("en")


class Catalogs:
    """Loads each language's catalog once per process."""

    def __init__(self, config: Config):
        self.config = config
        self._translators: dict[str, Translator] = {}

    def translator(self, language: str | None) -> Translator:
        language = language if language in self.config.language_ids else None
        language = language or self.config.default_language
        if language not in self._translators:
            translations = _load_translations(self.config.locales_dir, language)
            self._translators[language] = Translator(language, translations, self.config)
        return self._translators[language]
