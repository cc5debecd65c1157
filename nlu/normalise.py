"""Folds the invisible spelling variants of traditional Mongolian script text before the NLU.

Traditional-script text reaches Linli typed on different keyboards and input methods, which
write the same word with different invisible characters. The rules, each safe for every other
script (they touch only the Mongolian block U+1800-18AF, the narrow no-break space and the
zero-width joiners):

1. Free variation selectors FVS1-FVS4 (U+180B-180D, U+180F) are dropped: they choose which
   written form a letter takes, not which letter it is.
2. The Mongolian vowel separator (U+180E) is dropped: ᠪᠠᠶᠢᠨ᠎ᠠ and ᠪᠠᠶᠢᠨᠠ are one word, the
   separator only changes how the final vowel is drawn.
3. The narrow no-break space (U+202F), which joins a case suffix to its word (ᠭᠡᠷ ᠲᠦ), becomes an
   ordinary space: most people type the suffix after a space, some with U+202F.
4. Zero-width joiner and non-joiner (U+200C, U+200D), which some input methods insert to force
   a letter's form, are dropped.
5. Mongolian punctuation and digits become their common forms: ᠂ → ",", ᠃ → ".", ᠄ → ":",
   ᠐-᠙ → 0-9 (residents mix both).

Spelling itself is left alone: o/u and ö/ü are drawn alike in most positions and often mixed
up, but folding them would also have to be applied to the lookup tables the entity extractor
matches (docs/benchmarks.md measures the rules above with and without).
"""

from __future__ import annotations

import re

_DROPPED = dict.fromkeys(map(ord, "\u180b\u180c\u180d\u180e\u180f\u200c\u200d"))
_REPLACED = {0x202F: " ", 0x1802: ",", 0x1803: ".", 0x1804: ":",
             **{0x1810 + digit: str(digit) for digit in range(10)}}
_TABLE = {**_DROPPED, **_REPLACED}
_RUNS_OF_SPACES = re.compile(r" {2,}")
_MONGOLIAN_OR_JOINER = frozenset(chr(c) for c in (*range(0x1800, 0x18B0), 0x202F))


def normalise(text: str) -> str:
    """`text` with the rules above applied (unchanged when it has no traditional Mongolian)."""
    if not any(ch in _MONGOLIAN_OR_JOINER for ch in text):
        return text
    return _RUNS_OF_SPACES.sub(" ", text.translate(_TABLE))
