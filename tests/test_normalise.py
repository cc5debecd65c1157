"""nlu/normalise.py: the same traditional Mongolian word typed with different invisible
characters reads the same to the NLU; other scripts are untouched."""

from __future__ import annotations

from nlu.keywords import fold
from nlu.normalise import normalise


def test_variation_selectors_vowel_separators_and_joiners_are_folded():
    assert normalise("ᠪᠠᠶᠢᠨ\u180eᠠ") == normalise("ᠪᠠᠶᠢᠨᠠ") == "ᠪᠠᠶᠢᠨᠠ"
    assert normalise("ᠭᠠᠵᠠᠷ\u180b") == "ᠭᠠᠵᠠᠷ"
    assert normalise("ᠭᠡᠷ\u202fᠲᠦ") == normalise("ᠭᠡᠷ ᠲᠦ") == "ᠭᠡᠷ ᠲᠦ"
    assert normalise("ᠭᠡᠷ \u202f ᠲᠦ\u200d") == "ᠭᠡᠷ ᠲᠦ"


def test_mongolian_punctuation_and_digits_become_the_common_ones():
    assert normalise("ᠲᠠᠯᠪᠢᠭᠠ ᠑᠒ ᠂ ᠳ᠋ᠤᠭᠠᠷ᠃") == "ᠲᠠᠯᠪᠢᠭᠠ 12 , ᠳᠤᠭᠠᠷ."


def test_other_scripts_are_left_as_they_are():
    for text in ("3号楼电梯坏了", "lift  broken", "Лифт эвдэрсэн", "ཆུ་མི་འབབ།", "لىفت بۇزۇلدى"):
        assert normalise(text) == text


def test_emergency_keywords_match_whatever_the_invisible_characters():
    assert fold("ᠭᠠᠯ ᠭᠠᠷᠪᠠ\u180e") == fold("ᠭᠠᠯ ᠭᠠᠷᠪᠠ")
