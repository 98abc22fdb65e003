"""Words and type: Pillow's bundled scalable font, text measured in canvas units, and line filling.

Sizes and widths are fractions of the canvas side. Text is measured at the whole-pixel size it will
be drawn at (hinted glyphs at a few pixels are relatively much wider than at large sizes), so a
layout is planned for one resolution and its text boxes match the drawn glyphs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import ImageFont

HEADLINE_WORDS = {
    "inform": (
        "GUIDE",
        "FACTS",
        "REPORT",
        "UPDATE",
        "NOTES",
        "DATA",
        "HOW",
        "WHY",
        "LEARN",
        "RESULTS",
        "STUDY",
    ),
    "promote": (
        "NEW",
        "DISCOVER",
        "TRY",
        "BEST",
        "FRESH",
        "SUMMER",
        "LAUNCH",
        "EXPLORE",
        "GO",
        "BOLD",
        "TASTE",
    ),
    "announce": ("OPEN", "SOON", "LIVE", "TODAY", "BIG", "NEWS", "COMING", "HELLO", "ALERT", "HERE", "NOW"),
    "invite": (
        "JOIN",
        "PARTY",
        "GALA",
        "WEDDING",
        "DINNER",
        "EVENING",
        "CELEBRATE",
        "WELCOME",
        "YOU",
        "INVITED",
    ),
    "sell": ("SALE", "50%", "OFF", "DEAL", "BUY", "SAVE", "PRICE", "SHOP", "$9", "FREE", "NOW"),
}
SUBHEAD_WORDS = (
    "for",
    "the",
    "your",
    "this",
    "week",
    "city",
    "spring",
    "night",
    "club",
    "team",
    "all",
    "season",
    "best",
    "in",
    "town",
    "at",
    "our",
    "new",
    "studio",
    "market",
    "since",
    "2024",
    "only",
    "online",
)
BODY_WORDS = (
    "we",
    "are",
    "glad",
    "to",
    "share",
    "a",
    "small",
    "set",
    "of",
    "ideas",
    "with",
    "you",
    "and",
    "the",
    "people",
    "who",
    "make",
    "it",
    "happen",
    "every",
    "day",
    "from",
    "morning",
    "until",
    "late",
    "doors",
    "open",
    "at",
    "seven",
    "bring",
    "friends",
    "tickets",
    "free",
    "entry",
    "more",
    "info",
    "on",
    "site",
    "call",
    "us",
    "visit",
    "store",
    "hall",
    "room",
    "food",
    "music",
    "art",
    "talks",
    "kids",
    "welcome",
)


MAX_BODY_WORDS = 24


@lru_cache(maxsize=256)
def font(size_px: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled FreeType font at `size_px` (>= 1) pixels."""
    return ImageFont.load_default(size=max(1, size_px))  # type: ignore[return-value]


def pixel_size(size: float, resolution: int) -> int:
    """The whole-pixel font size a size in canvas units is drawn at (at least 1)."""
    return max(1, round(size * resolution))


@lru_cache(maxsize=16384)
def _advance(character: str, size_px: int) -> float:
    # the renderer draws bilevel glyphs, whose hinting gives other advances than antialiased ones
    return font(size_px).getlength(character, mode="1")


def text_width(text: str, size: float, resolution: int) -> float:
    """Advance width in canvas units of `text` drawn at font size `size` (canvas units) on `resolution` pixels.

    The sum of per-character advances: the bundled font lays text out without kerning, so this
    equals Pillow's `getlength` in the renderer's bilevel mode (a test pins it) at a fraction of the cost.
    """
    size_px = pixel_size(size, resolution)
    return sum(_advance(c, size_px) for c in text) / resolution


def line_height(size: float, resolution: int) -> float:
    """Ascender-to-descender height in canvas units of a line drawn at `size` on `resolution` pixels."""
    ascent, descent = font(pixel_size(size, resolution)).getmetrics()
    return (ascent + descent) / resolution


def wrap(words: list[str], size: float, width: float, resolution: int) -> list[str]:
    """Greedy line breaking of `words` into lines no wider than `width` (a single long word stays alone)."""
    lines: list[str] = []
    for word in words:
        if lines and text_width(f"{lines[-1]} {word}", size, resolution) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def body_line(rng: np.random.Generator, size: float, width: float, resolution: int) -> str:
    """Random body words filling a line to at most `width` (at least one word)."""
    words = [BODY_WORDS[i] for i in rng.integers(len(BODY_WORDS), size=MAX_BODY_WORDS)]
    space = text_width(" ", size, resolution)
    total, count = text_width(words[0], size, resolution), 1
    for word in words[1:]:
        total += space + text_width(word, size, resolution)
        if total > width:
            break
        count += 1
    return " ".join(words[:count])
