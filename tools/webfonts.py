"""Makes the web chat's fonts (bot/channels/web_assets/static/fonts/) from Debian's Noto fonts.

Run with Debian's Python, which has what this needs (the project's .venv lacks brotli, which
WOFF2 compresses with):
    apt-get install fonts-noto-core python3-fonttools python3-brotli
    /usr/bin/python3 tools/webfonts.py

Two fonts per script: a full one (every Tibetan letter and stack, every Arabic letter Uyghur
uses, every traditional Mongolian letter) and a tiny one with only the characters of the language picker (the language's own name
and "Please choose your language." from its catalog), so that the first screen, which shows all
six languages, stays small; the full font is fetched only when a page has other text in that
script (bot/channels/web_assets/static/chat.css lists both).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from fontTools import subset

ROOT = Path(__file__).resolve().parent.parent
NOTO = Path("/usr/share/fonts/truetype/noto")
OUT = ROOT / "bot" / "channels" / "web_assets" / "static" / "fonts"
FONTS = {
    # name: (source, language, unicode ranges of the full font)
    "tibetan": ("NotoSerifTibetan-Regular.ttf", "bo",
                "U+0F00-0F14,U+0F20-0F29,U+0F40-0F6C,U+0F71-0F87,U+0F90-0FBC"),
    "uyghur": ("NotoSansArabic-Regular.ttf", "ug", "U+0600-06FF,U+FB50-FDFF,U+FE70-FEFF"),
    # traditional Mongolian: every letter, the variation selectors, the vowel separator and the
    # narrow no-break space, whose shaping rules (the font's GSUB) pick each letter's form
    "mongolian": ("NotoSansMongolian-Regular.ttf", "mn_Mong", "U+1800-18AF,U+202F"),
}
PICKER = "Please choose your language."


def picker_text(language: str) -> str:
    """The picker's words in `language`: its translation of PICKER and its native name."""
    po = (ROOT / "locales" / language / "LC_MESSAGES" / "messages.po").read_text("utf-8")
    found = re.search(r'msgid "' + re.escape(PICKER) + r'"\nmsgstr "([^"]+)"', po)
    config = (ROOT / "config.yml").read_text("utf-8")
    name = re.search(r"id: " + language + r"\n\s+native_name: (\S+)", config)
    if not found or not name:
        sys.exit(f"tools/webfonts.py: no picker text for {language} in its catalog or config.yml")
    return found.group(1) + name.group(1)


def make(source: Path, target: Path, unicodes: list[int]) -> None:
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]
    options.hinting = False
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6]  # keep the copyright and licence names
    font = subset.load_font(str(source), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=unicodes)
    subsetter.subset(font)
    subset.save_font(font, str(target), options)
    print(f"{target.relative_to(ROOT)}: {target.stat().st_size} bytes")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (source, language, ranges) in FONTS.items():
        make(NOTO / source, OUT / f"{name}.woff2", subset.parse_unicodes(ranges))
        small = sorted({ord(ch) for ch in picker_text(language) if ord(ch) > 0x7F})
        make(NOTO / source, OUT / f"{name}-picker.woff2", small)
        print(f"  picker range: {','.join(f'U+{c:04X}' for c in small)}")


if __name__ == "__main__":
    main()
