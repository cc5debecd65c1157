"""Catalogs: every resident-facing string in every language, real and well-formed; locale formats."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.config import PROJECT_ROOT
from bot.i18n import LRI, PDI, RLI, Catalogs
from tests.conftest import LANGUAGES

FIELD = re.compile(r"\{(\w+)\}")


def source_messages() -> set[str]:
    """Every string passed to t(...) or N_(...) in the code, as Babel extracts them."""
    found = set()
    for folder in ("bot", "flows"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            PROJECT_ROOT / folder, keywords={"t": None, "N_": None, "ngettext": (1, 2)},
            # the staff console's texts live in their own catalog (bot/console/i18n.py)
            method_map=[("console/**.py", "ignore"), ("**.py", "python")],
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found


def singular(message_id) -> str:
    """A message's id: for one with plural forms (ngettext), its singular."""
    return message_id if isinstance(message_id, str) else message_id[0]


def forms(entry) -> list[tuple[str, str]]:
    """(id, translation) pairs: one, or one per plural form (each checked against the plural
    id, whose {fields} and line breaks every form keeps)."""
    if isinstance(entry.id, str):
        return [(entry.id, entry.string)]
    return [(entry.id[1], string) for string in entry.string]


def catalog(language: str):
    with open(PROJECT_ROOT / "locales" / language / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=language)


def test_the_template_lists_every_message_in_the_code():
    with open(PROJECT_ROOT / "locales" / "messages.pot", "rb") as f:
        template = {singular(m.id) for m in read_po(f) if m.id}
    assert source_messages() == template, "run: pybabel extract (see docs/translating.md)"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_in_every_catalog(language):
    entries = {singular(m.id): m for m in catalog(language) if m.id}
    missing = source_messages() - set(entries)
    assert not missing, f"{language}: no entry for {sorted(missing)[:5]}"
    for entry in entries.values():
        assert not entry.fuzzy, f"{language}: fuzzy {entry.id!r}"
        for message_id, string in forms(entry):
            assert string and string.strip(), f"{language}: empty {message_id!r}"
            assert sorted(FIELD.findall(string)) == sorted(
                FIELD.findall(message_id)
            ), f"{language}: {{fields}} differ in {message_id!r}"
            assert string.count("\n") == message_id.count("\n"), \
                f"{language}: line breaks differ in {message_id!r}"


SCRIPTS = {
    "zh_Hans": r"[\u4e00-\u9fff]",
    "zh_Hant": r"[\u4e00-\u9fff]",
    "mn": r"[\u0400-\u04ff]",
    "mn_Mong": r"[\u1820-\u18af]",  # letters, not only punctuation
    "bo": r"[\u0f00-\u0fff]",
    "ug": r"[\u0600-\u06ff]",
}


@pytest.mark.parametrize("language", sorted(SCRIPTS))
def test_translations_are_written_in_the_language_s_own_script(language):
    """A copied English string is not a translation: each one uses the language's script."""
    english_only = []
    for entry in catalog(language):
        if not entry.id:
            continue
        for message_id, string in forms(entry):
            letters = FIELD.sub("", message_id)
            if not re.search(r"[A-Za-z]{2}", letters) or letters.strip().startswith("/"):
                continue  # only {fields}, numbers or symbols
            if not re.search(SCRIPTS[language], string):
                english_only.append(message_id)
    assert not english_only, f"{language}: not translated: {english_only[:5]}"


def test_simplified_and_traditional_chinese_differ_where_the_characters_do():
    simplified = {m.id: m.string for m in catalog("zh_Hans") if m.id}
    traditional = {m.id: m.string for m in catalog("zh_Hant") if m.id}
    assert simplified["Settings"] != traditional["Settings"]
    assert "诉求" in simplified["My requests"] and "訴求" in traditional["My requests"]


def test_the_picker_shows_each_language_in_its_own_script(config):
    names = {lang.id: lang.native_name for lang in config.languages}
    assert names == {
        "zh_Hans": "简体中文", "zh_Hant": "繁體中文", "en": "English", "mn": "Монгол",
        "mn_Mong": "ᠮᠣᠩᠭᠣᠯ", "bo": "བོད་ཡིག", "ug": "ئۇيغۇرچە",
    }


def test_dates_are_written_the_way_each_locale_writes_them(config):
    catalogs = Catalogs(config)
    moment = datetime(2026, 11, 23, 1, 30)  # UTC; 09:30 in Asia/Shanghai
    written = {lang: catalogs.translator(lang).datetime(moment) for lang in LANGUAGES}
    assert written["zh_Hans"] == "2026年11月23日 09:30"
    assert written["en"] == "Nov 23, 2026, 9:30\u202fAM"  # CLDR: narrow no-break space
    assert "оны 11" in written["mn"]
    # Babel has no traditional-script month names: config.yml gives a numeric date (and the
    # Cyrillic locale's month words must not appear in traditional-script text)
    assert written["mn_Mong"] == "2026.11.23 09:30"
    assert "ཟླ་" in written["bo"]
    assert "نويابىر" in written["ug"] and written["ug"].startswith(RLI)
    assert catalogs.translator("zh_Hans").date(moment) == "2026年11月23日"


def test_left_to_right_values_are_isolated_inside_uyghur_text(config):
    t = Catalogs(config).translator("ug")
    text = t("Your request {tracking_number} has been resolved.", tracking_number="R-123456")
    assert f"{LRI}R-123456{PDI}" in text
    assert Catalogs(config).translator("en")(
        "Your request {tracking_number} has been resolved.", tracking_number="R-123456"
    ) == "Your request R-123456 has been resolved."


def test_an_unknown_language_falls_back_to_the_default(config):
    assert Catalogs(config).translator("xx").language == config.default_language
