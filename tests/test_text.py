"""Cleaning input, numbers in any script, and the language a script points to."""

from __future__ import annotations

import pytest

from bot.text import clean, guess_language, has_visible_content, parse_number


def test_clean_drops_hidden_and_control_characters_but_keeps_words():
    assert clean("  lift\u200b is\x00 broken\u202e \n\n  floor 3 ") == "lift is broken\nfloor 3"
    assert clean("\u200b\ufeff\u2066") == ""
    assert clean(None) == ""
    # ZWNJ inside an Arabic-script word is part of the spelling: kept.
    assert clean("مەن\u200cمۇ") == "مەن\u200cمۇ"
    assert clean("བོད་ཡིག") == "བོད་ཡིག"


def test_visible_content():
    assert has_visible_content("漏水")
    assert has_visible_content("7")
    assert not has_visible_content("...。")


@pytest.mark.parametrize("text,number", [
    ("3", 3), ("３", 3), ("٣", 3), ("۳", 3), ("༣", 3), ("12.", 12), (" 2) ", 2),
    ("3a", None), ("", None), ("12345", None), ("R-12", None),
])
def test_numbers_in_every_script(text, number):
    assert parse_number(text) == number


@pytest.mark.parametrize("text,language", [
    ("电梯坏了怎么办", "zh_Hans"),
    ("電梯壞了怎麼辦", "zh_Hant"),
    ("the lift is broken", "en"),
    ("Лифт эвдэрсэн байна", "mn"),
    ("འཕར་འཁོར་ཆག་འདུག", "bo"),
    ("لىفت بۇزۇلۇپ قالدى", "ug"),
    ("12345", None),
])
def test_the_script_of_a_first_message_picks_the_language(config, text, language):
    assert guess_language(text, config.languages, config.default_language) == language


def test_the_traditional_mongolian_shaping_characters_are_kept_inside_words():
    """The vowel separator, the variation selectors and the narrow no-break space before a
    suffix decide how a word is drawn: kept in a word, dropped where they shape nothing."""
    written = "ᠰᠠᠶᠢᠨ ᠪᠠᠶᠢᠨ\u180eᠠ ᠤᠤ ᠭᠡᠷ\u202fᠲᠦ ᠨ\u180b"
    assert clean(written) == written
    assert clean("\u180e ᠤᠤ \u202f ᠠ\u202f") == "ᠤᠤ ᠠ"
    assert clean("ᠠ\u202f\u202fᠤ") == "ᠠ ᠤ"
