"""Cleaning residents' raw text, reading numbers in any script, and telling a text's script."""

from __future__ import annotations

import re
import unicodedata

import hanzidentifier

MAX_TEXT_LENGTH = 1000

# Format characters that only hide or reorder text: zero-width, bidi embeddings/overrides/isolates.
_INVISIBLE = {
    "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad",
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
}
# ZWJ/ZWNJ carry meaning inside Arabic-script and Indic words; keep them between letters. So do
# the traditional Mongolian script's free variation selectors (U+180B-180D, U+180F) and vowel
# separator (U+180E), which choose a letter's written shape, and the narrow no-break space
# (U+202F) that joins a case suffix to its word (ᠭᠡᠷ ᠲᠦ): without them the words are drawn
# wrongly, though the letters are the same (nlu/normalise.py folds them for understanding).
_JOINERS = {"\u200c", "\u200d", "\u202f"}
_MONGOLIAN_CONTROLS = {"\u180b", "\u180c", "\u180d", "\u180e", "\u180f"}
_SPACES = re.compile(r"[^\S\u202f]+")


def clean(raw: str | None) -> str:
    """NFC-normalises, drops control and invisible characters, collapses spaces, trims."""
    if not raw:
        return ""
    text = unicodedata.normalize("NFC", raw)
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch in ("\n", "\t"):
            out.append(" " if ch == "\t" else "\n")
            continue
        if ch in _JOINERS:
            before = text[i - 1] if i else ""
            after = text[i + 1] if i + 1 < len(text) else ""
            if (before.isalpha() or before in _MONGOLIAN_CONTROLS) and after.isalpha():
                out.append(ch)
            elif ch == "\u202f":
                out.append(" ")  # a space all the same, where it joins no suffix
            continue
        if ch in _MONGOLIAN_CONTROLS:  # they follow the letter they shape, even at a word's end
            if i and (text[i - 1].isalpha() or text[i - 1] in _MONGOLIAN_CONTROLS):
                out.append(ch)
            continue
        if ch in _INVISIBLE:
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Co", "Cn"):
            continue
        if category == "Cf" and ch not in ("\u0f0b",):
            continue
        out.append(ch)
    lines = [" ".join(_SPACES.split(line.strip())) for line in "".join(out).split("\n")]
    return "\n".join(line for line in lines if line).strip()


def has_visible_content(text: str) -> bool:
    """True when the text has a letter, digit, mark or symbol (not only punctuation)."""
    return any(unicodedata.category(ch)[0] in "LNS" for ch in text)


def parse_number(text: str) -> int | None:
    """Reads '3', '３', '٣', '۳' or '༣' (an optional trailing '.' or ')' too) as an int."""
    stripped = text.strip().rstrip(".)．、")
    if not stripped or len(stripped) > 4:
        return None
    digits = []
    for ch in stripped:
        try:
            digits.append(str(unicodedata.decimal(ch)))
        except (TypeError, ValueError):
            return None
    return int("".join(digits))


def word_count(text: str) -> int:
    """About how many words `text` has: words between spaces, Tibetan syllables between
    tshegs, and two Chinese characters to a word (电梯 is one word, 电梯坏了 two)."""
    han = sum(1 for ch in text if _script(ch) == "Han")
    words = [w for w in re.split(r"[\s\u0f0b\u0f0d]+", text)
             if any(ch.isalnum() and _script(ch) != "Han" for ch in w)]
    return len(words) + (han + 1) // 2 if han else len(words)


# The scripts a language can be recognised by (config.yml: languages[].script). Han text is
# told apart as simplified ("Hans") or traditional ("Hant") writing by `hanzidentifier`.
SCRIPTS = ("Latin", "Cyrillic", "Tibetan", "Arabic", "Mongolian", "Hans", "Hant")
# The same scripts by their ISO 15924 codes, as locale ids spell them (mn_Mong, zh_Hant).
SCRIPT_ALIASES = {"Latn": "Latin", "Cyrl": "Cyrillic", "Tibt": "Tibetan", "Arab": "Arabic",
                  "Mong": "Mongolian"}
_RANGES = (
    ("Tibetan", 0x0F00, 0x0FFF),
    ("Arabic", 0x0600, 0x06FF), ("Arabic", 0x0750, 0x077F), ("Arabic", 0xFB50, 0xFDFF),
    ("Arabic", 0xFE70, 0xFEFF),
    ("Cyrillic", 0x0400, 0x052F),
    ("Mongolian", 0x1800, 0x18AF),
    ("Han", 0x4E00, 0x9FFF), ("Han", 0x3400, 0x4DBF), ("Han", 0xF900, 0xFAFF),
    ("Latin", 0x0041, 0x005A), ("Latin", 0x0061, 0x007A), ("Latin", 0x00C0, 0x024F),
)
# A Han character carries about as much as a short word in an alphabet: `3号楼 lift 坏了` is
# Chinese with an English word in it, not English.
_HAN_WEIGHT = 3


def script_of(text: str) -> str | None:
    """The script most of `text` is written in (one of SCRIPTS, or "Han" when the Chinese
    characters fit both simplified and traditional writing); None without letters."""
    counts: dict[str, int] = {}
    for ch in text:
        script = _script(ch)
        if script:
            counts[script] = counts.get(script, 0) + (_HAN_WEIGHT if script == "Han" else 1)
    if not counts:
        return None
    script = max(counts, key=counts.get)
    if script != "Han":
        return script
    kind = hanzidentifier.identify(text)
    if kind == hanzidentifier.SIMPLIFIED:
        return "Hans"
    if kind == hanzidentifier.TRADITIONAL:
        return "Hant"
    return "Han"


def guess_language(text: str, languages, default_language: str) -> str | None:
    """The configured language the script of `text` shows, if any.

    `languages`: the config's languages, each with an `id` and a `script` (or None). Text in
    Chinese characters that fit both writings goes to the default language if it is written
    in Chinese characters, else to the first language that is.
    """
    script = script_of(text)
    if script is None:
        return None
    if script == "Han":
        chinese = [lang.id for lang in languages if lang.script in ("Hans", "Hant")]
        if default_language in chinese:
            return default_language
        return chinese[0] if chinese else None
    return next((lang.id for lang in languages if lang.script == script), None)


def _script(ch: str) -> str | None:
    code = ord(ch)
    for script, low, high in _RANGES:
        if low <= code <= high:
            return script
    return None


# --- hiding contact details in residents' free text ------------------------------------------
MASK = "•••"
_CHINESE_DIGITS = "〇零一二三四五六七八九两兩十百"
_PHONE_SEPARATORS = " -./()+·"
# What a phone number looks like once every digit (any script, Chinese numerals too) reads 0:
# at least seven digits, grouped by spaces, dots, dashes, slashes or brackets.
_PHONE_SHAPE = re.compile(r"\+?0[0 \-./()+·]{5,}0")
_DATE_SHAPE = re.compile(r"^0{4}[-./]0{1,2}[-./]0{1,2}$")
_NUMBER = r"[0-9０-９༠-༩٠-٩" + _CHINESE_DIGITS + r"]+"
# Places written into a description: a number joined to an address word, and road names.
_ADDRESS_PATTERNS = (
    # 3号楼2单元501室, 幸福路12号, 5棟3樓, 12弄
    re.compile(r"(?:[\u4e00-\u9fff]{1,6}(?:路|街|巷|道|弄|里|村|小区|小區|社区|社區))?"
               r"(?:" + _NUMBER + r"\s*(?:号楼|號樓|号|號|楼|樓|栋|棟|幢|座|单元|單元|室|户|戶|"
               r"弄|层|層|门|門|排|组|組)\s*)+"),
    re.compile(r"[\u4e00-\u9fff]{1,6}(?:路|街|巷|大道)(?=\s|$|[，。,.])"),
    # room 501, flat 3B, building 3, 12 Xingfu Road
    re.compile(r"\b(?:room|rm|flat|apt|apartment|unit|building|bldg|block|floor|house|no\.?)"
               r"\s*#?\s*\d+[A-Za-z]?\b", re.IGNORECASE),
    re.compile(r"\b\d+[A-Za-z]?(?:\s+[A-Z][A-Za-z]*){1,3}\s+(?:Road|Rd|Street|St|Lane|Ln|"
               r"Avenue|Ave|Drive|Dr|Way)\b\.?"),
    # 3-р байр, 12 тоот, 5 давхар
    re.compile(r"\d+\s*(?:-?\s*(?:р|р\.|дугаар))?\s*(?:байр|тоот|орц|давхар|хороо|гудамж)\w*",
               re.IGNORECASE),
    # 3-بىنا, 12-ئۆي, 5-قەۋەت
    re.compile(r"[0-9٠-٩]+\s*-?\s*(?:بىنا|ئۆي|قەۋەت|كوچا|نومۇر|ئىشىك|ئېغىز)\S*"),
    # ཁང་མིག་ཨང་༣, ཐོག་ ༥, ཨང་ 12
    re.compile(r"(?:ཁང་མིག|ཁང་པ|ཐོག|ཨང)[་\s]*(?:ཨང[་\s]*)?[༠-༩0-9]+"),
)


def _digit_value(ch: str) -> bool:
    if ch in _CHINESE_DIGITS:
        return True
    try:
        unicodedata.decimal(ch)
        return True
    except (TypeError, ValueError):
        return False


def _phone_shape(ch: str) -> str:
    if _digit_value(ch):
        return "0"
    folded = unicodedata.normalize("NFKC", ch)
    return folded if len(folded) == 1 and folded in _PHONE_SEPARATORS else "x"


def mask_phones(text: str) -> str:
    """Phone-like runs become •••: 13700001111, 137 0000 1111, 138.1234.5678, +86 138…,
    full-width digits and Chinese numerals (一三八…) alike. Dates are left as they are."""
    shape = "".join(_phone_shape(ch) for ch in text)  # one character for each of text's
    out, last = [], 0
    for match in _PHONE_SHAPE.finditer(shape):
        digits = match.group().count("0")
        if digits < 7 or _DATE_SHAPE.match(match.group()):
            continue
        out += [text[last:match.start()], MASK]
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def mask_contacts(text: str | None) -> str:
    """The text with phone numbers and written addresses replaced by •••.

    For a request whose writer erased their data (/forget) while it was still open: staff
    keep what the problem is, not how to find or call the person. Best effort: a place
    written in words alone ("next to the old school") is not recognised.
    """
    masked = mask_phones(text or "")
    for pattern in _ADDRESS_PATTERNS:
        masked = pattern.sub(lambda m: MASK if m.group().strip() else m.group(), masked)
    return masked
