"""What a viewer sees of residents' phones and addresses: masked, in fields and in free text."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

MASK = "•••"

# Chinese numerals as people write phone numbers with them (一三八…, 幺 for 1, capital forms).
_CHINESE_DIGITS = {ch: str(i) for i, chars in enumerate(
    ("〇零", "一幺壹", "二两贰", "三叁", "四肆", "五伍", "六陆", "七柒", "八捌", "九玖"))
    for ch in chars}
# What people put between the digits of a phone number, in ASCII and full width.
_SEPARATORS = set(" .-/()\u3000．－／（）—–·・_")
_PLUS = {"+", "＋"}
# On the digit string below: 7 or more digits, up to 2 separators between two of them.
_PHONE = re.compile(r"(?<![0-9])\+?[0-9](?:[ ]{0,2}[0-9]){6,}(?![0-9])")
_NUMBER = r"[0-9一二三四五六七八九十百零〇两]+"
# Places written in text: a street and its number, a building, unit, room or floor.
_PLACE = re.compile(
    rf"[\w]{{0,12}}?(?:路|街|道|巷|弄|胡同|大道|小区|社区|村)\s*{_NUMBER}\s*号(?:院)?"
    rf"|{_NUMBER}\s*(?:号楼|号院|栋|幢|座|单元|室|层|楼|号|户)"
    r"|\b(?:building|block|bldg|unit|flat|apt|apartment|room|rm|floor|house|no)\.?\s*#?\s*\d+\w*"
    r"|\b\d+\w*\s+(?:[A-Z][a-z]+\s+){1,3}(?:road|rd|street|st|avenue|ave|lane|ln|way|drive|dr)\b",
    re.IGNORECASE)


def _as_digits(text: str) -> str:
    """The same text, one character for one, with every digit (any script, full width,
    Chinese numerals) as 0-9, separators as a space and a plus as '+'."""
    out = []
    for ch in text:
        if ch in _CHINESE_DIGITS:
            out.append(_CHINESE_DIGITS[ch])
        elif unicodedata.category(ch) == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        elif ch in _SEPARATORS:
            out.append(" ")
        elif ch in _PLUS:
            out.append("+")
        else:
            out.append(ch)
    return "".join(out)


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """Each run of text covered by one or more spans becomes one MASK."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, last = [], 0
    for start, end in merged:
        out += [text[last:start], MASK]
        last = end
    out.append(text[last:])
    return "".join(out)


def mask_phone(phone: str | None) -> str:
    if not phone:
        return ""
    digits = re.sub(r"\D", "", _as_digits(phone))
    return (digits[:3] + "*" * max(len(digits) - 5, 3) + digits[-2:]) if len(digits) > 5 \
        else "*" * len(digits)


def mask_address(address: str | None) -> str:
    if not address:
        return ""
    return address.strip()[:2] + "…"


def mask_text(text: str | None, places: Iterable[str] = ()) -> str:
    """Free text with phone numbers in any form, the given known places (a resident's
    address, the place of their requests) and place-like phrases replaced by •••."""
    text = text or ""
    if not text:
        return ""
    spans = []
    for place in {p.strip() for p in places if p and len(p.strip()) >= 2}:
        start = text.find(place)
        while start != -1:
            spans.append((start, start + len(place)))
            start = text.find(place, start + 1)
    digits = _as_digits(text)
    spans += [m.span() for m in _PHONE.finditer(digits)]
    spans += [m.span() for m in _PLACE.finditer(digits)]
    return _replace_spans(text, spans)


class Masker:
    """What a staff member may see of residents' contact details: everything, or for a
    viewer masked phones, addresses and coordinates, and masked phones and places in text."""

    def __init__(self, on: bool, places: Iterable[str] = ()):
        self.on = on
        self.places = tuple(p for p in places if p)

    def phone(self, value):
        return mask_phone(value) if self.on else (value or "")

    def address(self, value):
        return mask_address(value) if self.on else (value or "")

    def text(self, value):
        return mask_text(value, self.places) if self.on else (value or "")
