"""Text blocks: fit headline, subhead and body lines into a region and place them as TextLines.

Sizes are whole pixels at the layout's resolution, and every width and height is measured at that
pixel size, so the boxes the grammar reads are the boxes the glyphs are drawn in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.design.layout import Box, TextLine
from datamodules.design.typography import body_line, line_height, pixel_size, text_width, wrap

LEADING = {"headline": 1.0, "subhead": 1.1, "body": 1.25}  # line advance / line height
GAP_AFTER = {
    "headline": 0.45,
    "subhead": 0.6,
    "body": 0.0,
}  # extra space after a role's last line, x its size
BODY_PX_PER_RESOLUTION = (
    1 / 32
)  # smallest body size (4 px at 128, 3 at 64): crowded stacks drop body lines instead
SHRINK = 0.92  # size factor per fitting step


@dataclass(frozen=True)
class TextContent:
    """The words of a design: headline and subhead words, and how many body lines (seeded words)."""

    headline: tuple[str, ...]
    subhead: tuple[str, ...]
    body_lines: int
    body_seed: int


Rows = list[tuple[str, str]]  # (role, text) per line, top to bottom


def fit_text(
    content: TextContent, sizes: dict[str, float], region: Box, resolution: int
) -> tuple[Rows, dict[str, float]]:
    """Wrap the text into the region's width and make it fit the region's height.

    Headline words too wide for the column are dropped (one word always stays). Sizes shrink
    together (keeping their ratios) until body text reaches its smallest legible size; a stack
    still too tall then loses body lines, then its subhead. Returns the rows and the whole-pixel
    sizes they are drawn at.
    """
    width, available = region[2] - region[0], region[3] - region[1]
    min_body = max(3, round(resolution * BODY_PX_PER_RESOLUTION)) / resolution
    sizes = {role: s * max(1.0, min_body / sizes["body"]) for role, s in sizes.items()}  # legible body text
    headline = list(content.headline)
    while len(headline) > 1 and _widest(headline, sizes, resolution) > width:
        headline.remove(max(headline, key=lambda word: text_width(word, 1.0, resolution)))
    for _ in range(60):  # a single headline word too wide for the column: everything shrinks
        if _widest(headline, sizes, resolution) <= width:
            break
        sizes = {role: s * SHRINK for role, s in sizes.items()}
    body_lines, subhead = content.body_lines, content.subhead
    for _ in range(80):
        drawn = _drawn(sizes, resolution, min_body)
        rows = _rows(content.body_seed, headline, subhead, body_lines, drawn, width, resolution)
        if stack_height(rows, drawn, resolution) <= available:
            break
        if sizes["body"] * SHRINK >= min_body:
            sizes = {role: s * SHRINK for role, s in sizes.items()}
        elif body_lines > 1:
            body_lines -= 1
        elif subhead:
            subhead = ()
        else:
            sizes = {role: s * SHRINK for role, s in sizes.items()}
    return rows, drawn


def place_text(
    rows: Rows,
    sizes: dict[str, float],
    region: Box,
    resolution: int,
    align: str,
    vertical: str,
    colors: dict[str, int],
    jitter: float,
    rng: np.random.Generator,
) -> list[TextLine]:
    """TextLines for `rows` at the region's top, centre or bottom (`vertical`), aligned left/centre/right.

    A non-zero `jitter` moves each line sideways by N(0, jitter) (a sloppy layout).
    """
    x0, y0, x1, y1 = region
    height = stack_height(rows, sizes, resolution)
    top = {"top": y0, "centre": y0 + (y1 - y0 - height) / 2, "bottom": y1 - height}[vertical]
    anchor = {"left": x0, "centre": (x0 + x1) / 2, "right": x1}[align]
    lines = []
    for (role, text), offset in zip(rows, _offsets(rows, sizes, resolution), strict=True):
        size = sizes[role]
        x = anchor + (rng.normal(0.0, jitter) if jitter else 0.0)
        width, line_h = text_width(text, size, resolution), line_height(size, resolution)
        lines.append(
            TextLine(role, text, float(x), float(top + offset), size, align, colors[role], width, line_h)
        )
    return lines


def stack_height(rows: Rows, sizes: dict[str, float], resolution: int) -> float:
    """From the first line's top to the last line's bottom."""
    return _offsets(rows, sizes, resolution)[-1] + line_height(sizes[rows[-1][0]], resolution)


def _drawn(sizes: dict[str, float], resolution: int, min_body: float) -> dict[str, float]:
    """Sizes rounded to whole pixels, body text no smaller than `min_body`."""
    drawn = {role: pixel_size(size, resolution) / resolution for role, size in sizes.items()}
    drawn["body"] = max(drawn["body"], min_body)
    return drawn


def _widest(words: list[str], sizes: dict[str, float], resolution: int) -> float:
    return max(text_width(word, sizes["headline"], resolution) for word in words)


def _rows(
    body_seed: int,
    headline: list[str],
    subhead: tuple[str, ...],
    body_lines: int,
    sizes: dict[str, float],
    width: float,
    resolution: int,
) -> Rows:
    """Wrapped headline and subhead, then `body_lines` lines of seeded random words (the same at every fit)."""
    body_rng = np.random.default_rng(body_seed)
    rows = [("headline", line) for line in wrap(headline, sizes["headline"], width, resolution)]
    rows += [("subhead", line) for line in wrap(list(subhead), sizes["subhead"], width, resolution)]
    for i in range(body_lines):
        fill = width * (body_rng.uniform(0.7, 1.0) if i < body_lines - 1 else body_rng.uniform(0.3, 0.7))
        rows.append(("body", body_line(body_rng, sizes["body"], fill, resolution)))
    return rows


def _offsets(rows: Rows, sizes: dict[str, float], resolution: int) -> list[float]:
    """Top of each line relative to the first; after a role's last line comes that role's gap."""
    offsets, top = [], 0.0
    for i, (role, _) in enumerate(rows):
        if i and rows[i - 1][0] != role:
            top += sizes[rows[i - 1][0]] * GAP_AFTER[rows[i - 1][0]]
        offsets.append(top)
        top += line_height(sizes[role], resolution) * LEADING[role]
    return offsets
