"""V_Meta -> Layout: the goal, format and tone choose palette, type sizes, density and arrangement.

How the metadata shows (so a model can learn it from the picture and from the F_Tensor):
- goal: hue family, preferred text alignment, arrangement (stack / split / text only), headline
  size, number of body lines, image size and texture kinds, decorations.
- format: the letterboxed rectangle; banners always split side by side, stories always stack.
- tone: energy raises saturation, headline size, the chance of a dark palette and of a band, and
  narrows margins; seriousness favours left alignment, dark/neutral palettes, angular textures over
  round ones, frames and rules over discs. (Texture frequency is drawn independently of the tone.)

Each design also draws four independent flaws (each absent in about half the designs, else of a
random severity) that the grammar scores measure: jittered alignment, low-contrast text colours,
content pushed into a corner, flattened type-size ratios.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from datamodules.design.colors import PALETTE_SIZE, make_palette
from datamodules.design.layout import ALIGNMENTS, Box, ImageBlock, Layout, Panel, TextLine, design_box
from datamodules.design.metadata import DesignMeta
from datamodules.design.text_stack import TextContent, fit_text, place_text, stack_height
from datamodules.design.textures import TEXTURES, texture_weights
from datamodules.design.typography import HEADLINE_WORDS, SUBHEAD_WORDS

ARRANGEMENTS = ("stack", "split", "text_only")
FLAW_PROBABILITY = 0.5


@dataclass(frozen=True)
class GoalStyle:
    hue: float  # base hue in [0, 1)
    align: tuple[float, float, float]  # weights of left / centre / right text
    arrangement: tuple[float, float, float]  # weights of ARRANGEMENTS
    image_fraction: tuple[float, float]  # image height share of the content (stack) or width (split)
    headline: float  # headline size as a share of the text column width
    body_lines: tuple[int, int]  # inclusive range


GOAL_STYLES = {
    "inform": GoalStyle(0.58, (0.75, 0.15, 0.10), (0.45, 0.30, 0.25), (0.22, 0.35), 0.17, (4, 7)),
    "promote": GoalStyle(0.07, (0.20, 0.70, 0.10), (0.65, 0.30, 0.05), (0.42, 0.60), 0.26, (1, 3)),
    "announce": GoalStyle(0.96, (0.15, 0.75, 0.10), (0.20, 0.15, 0.65), (0.20, 0.32), 0.38, (1, 2)),
    "invite": GoalStyle(0.78, (0.08, 0.87, 0.05), (0.50, 0.20, 0.30), (0.25, 0.40), 0.22, (2, 4)),
    "sell": GoalStyle(0.14, (0.40, 0.15, 0.45), (0.35, 0.55, 0.10), (0.35, 0.50), 0.30, (1, 3)),
}


@dataclass(frozen=True)
class Flaws:
    """Severities in [0, 1] of the four deliberate design mistakes (0: absent)."""

    alignment: float
    contrast: float
    balance: float
    hierarchy: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Flaws:
        severities = np.where(rng.random(4) < FLAW_PROBABILITY, rng.uniform(0.15, 1.0, 4), 0.0)
        return cls(*(float(s) for s in severities))


def plan_layout(meta: DesignMeta, rng: np.random.Generator, resolution: int) -> Layout:
    """A complete layout of `meta` for a canvas of `resolution` pixels, every random choice drawn from `rng`."""
    style = GOAL_STYLES[meta.goal]
    flaws = Flaws.draw(rng)
    energy, serious = meta.energy, meta.seriousness
    design = design_box(meta.aspect)
    dark = rng.random() < 0.1 + 0.5 * energy * (0.4 + 0.6 * serious)
    saturation = float(np.clip(0.3 + 0.6 * energy - 0.25 * serious + rng.normal(0, 0.08), 0.05, 1.0))
    background, palette = make_palette(rng, style.hue, saturation, dark, 0.08 + 0.4 * (1 - serious))

    short_side = min(design[2] - design[0], design[3] - design[1])
    margin = short_side * float(np.clip(0.12 - 0.06 * energy + rng.normal(0, 0.01), 0.04, 0.16))
    content = _content_region(design, margin, flaws.balance, rng)
    align = _choose_align(style, serious, rng)
    arrangement = _choose_arrangement(style, meta.format, rng)
    jitter = 0.035 * flaws.alignment * (design[2] - design[0])
    colors = _text_colors(flaws.contrast, rng)

    text = _text_content(meta, style, rng)
    if arrangement == "split":
        image_box, text_region = _split(content, style, rng)
        sizes = _role_sizes(meta, style, text_region[2] - text_region[0], flaws, rng)
        rows, sizes = fit_text(text, sizes, text_region, resolution)
        lines = place_text(rows, sizes, text_region, resolution, align, "centre", colors, jitter, rng)
    else:
        image_shape = _stack_image_shape(content, style, rng) if arrangement == "stack" else None
        sizes = _role_sizes(meta, style, content[2] - content[0], flaws, rng)
        image_box, lines = _stack(content, image_shape, text, sizes, align, colors, jitter, rng, resolution)
    lines = [_within(line, design) for line in lines]
    images = [] if image_box is None else [_image_block(image_box, meta, jitter, rng)]
    panels = _decorations(design, margin, lines, images, meta, rng)
    return Layout(resolution, design, margin, background, palette, tuple(panels), tuple(images), tuple(lines))


def _within(line: TextLine, design: Box) -> TextLine:
    """The line moved sideways as little as needed to lie inside the format (jitter never crops text)."""
    left, _, right, _ = line.box
    shift = max(design[0] - left, 0.0) + min(design[2] - right, 0.0)
    return replace(line, x=line.x + shift) if shift else line


def _content_region(design: Box, margin: float, balance_flaw: float, rng: np.random.Generator) -> Box:
    """The page inside its margins; a balance flaw shrinks it towards a random corner."""
    x0, y0, x1, y1 = design[0] + margin, design[1] + margin, design[2] - margin, design[3] - margin
    if balance_flaw == 0:
        return (x0, y0, x1, y1)
    keep = 1.0 - 0.5 * balance_flaw
    w, h = (x1 - x0) * keep, (y1 - y0) * keep
    left, top = rng.random() < 0.5, rng.random() < 0.5
    nx0 = x0 if left else x1 - w
    ny0 = y0 if top else y1 - h
    return (nx0, ny0, nx0 + w, ny0 + h)


def _choose_align(style: GoalStyle, serious: float, rng: np.random.Generator) -> str:
    weights = np.array(style.align) + np.array([0.5 * serious, 0.5 * (1 - serious), 0.0])
    return ALIGNMENTS[int(rng.choice(3, p=weights / weights.sum()))]


def _choose_arrangement(style: GoalStyle, format_name: str, rng: np.random.Generator) -> str:
    if format_name == "banner":
        return "split" if rng.random() < 0.75 else "text_only"
    weights = np.array(style.arrangement)
    if format_name == "story":
        weights[1] = 0.0
    return ARRANGEMENTS[int(rng.choice(3, p=weights / weights.sum()))]


def _text_colors(contrast_flaw: float, rng: np.random.Generator) -> dict[str, int]:
    """Palette entry per role: the legible entries 0/1, or with probability = the flaw a faint 2..4."""
    colors = {
        "headline": int(rng.random() < 0.35),
        "subhead": int(rng.random() < 0.6),
        "body": int(rng.random() < 0.3),
    }
    for role in colors:
        if rng.random() < contrast_flaw:
            colors[role] = int(rng.integers(2, 5))
    return colors


def _split(content: Box, style: GoalStyle, rng: np.random.Generator) -> tuple[Box, Box]:
    """(image box, text column): side by side, the image on a random side."""
    x0, y0, x1, y1 = content
    width = x1 - x0
    image_w = width * rng.uniform(*style.image_fraction) * 0.9
    inset = (y1 - y0) * rng.uniform(0.0, 0.15)  # the image spans most of the height, centred
    gap = width * 0.06
    if rng.random() < 0.5:
        return (x0, y0 + inset, x0 + image_w, y1 - inset), (x0 + image_w + gap, y0, x1, y1)
    return (x1 - image_w, y0 + inset, x1, y1 - inset), (x0, y0, x1 - image_w - gap, y1)


def _role_sizes(
    meta: DesignMeta, style: GoalStyle, column_width: float, flaws: Flaws, rng: np.random.Generator
) -> dict[str, float]:
    """Headline from the goal and energy; subhead and body by ratios a hierarchy flaw flattens."""
    headline = column_width * style.headline * (0.8 + 0.5 * meta.energy) * rng.uniform(0.9, 1.15)
    flatten = 1.0 - flaws.hierarchy
    to_subhead = rng.uniform(1.5, 2.1) ** flatten
    to_body = rng.uniform(1.5, 1.9) ** flatten
    return {"headline": headline, "subhead": headline / to_subhead, "body": headline / to_subhead / to_body}


def _text_content(meta: DesignMeta, style: GoalStyle, rng: np.random.Generator) -> TextContent:
    """Goal words for the headline (title case when playful), generic subhead words, body line count."""
    headline = [str(w) for w in rng.choice(HEADLINE_WORDS[meta.goal], size=rng.integers(1, 4), replace=False)]
    if meta.seriousness < 0.35:
        headline = [w.capitalize() for w in headline]
    subhead = (
        [str(w) for w in rng.choice(SUBHEAD_WORDS, size=rng.integers(2, 5), replace=False)]
        if rng.random() < 0.8
        else []
    )
    body_lines = int(rng.integers(style.body_lines[0], style.body_lines[1] + 1))
    return TextContent(tuple(headline), tuple(subhead), body_lines, int(rng.integers(2**31)))


def _stack_image_shape(content: Box, style: GoalStyle, rng: np.random.Generator) -> tuple[float, float, bool]:
    """(width, height, above the text?) of a stacked layout's image."""
    width, height = content[2] - content[0], content[3] - content[1]
    return (
        width * rng.uniform(0.6, 1.0),
        height * rng.uniform(*style.image_fraction),
        bool(rng.random() < 0.7),
    )


def _stack(
    content: Box,
    image_shape: tuple[float, float, bool] | None,
    text: TextContent,
    sizes: dict[str, float],
    align: str,
    colors: dict[str, int],
    jitter: float,
    rng: np.random.Generator,
    resolution: int,
) -> tuple[Box | None, list[TextLine]]:
    """Image (if any) and text block stacked and, as a group, centred vertically in `content`.

    The image follows the text's alignment (left edge, centre or right edge of the column).
    """
    x0, y0, x1, y1 = content
    image_w, image_h, image_first = image_shape or (0.0, 0.0, True)
    gap = 0.05 * (y1 - y0) if image_shape else 0.0
    rows, sizes = fit_text(text, sizes, (x0, y0, x1, y1 - image_h - gap), resolution)
    text_h = stack_height(rows, sizes, resolution)
    top = y0 + max(0.0, (y1 - y0) - image_h - gap - text_h) / 2
    image_top, text_top = (top, top + image_h + gap) if image_first else (top + text_h + gap, top)
    lines = place_text(
        rows, sizes, (x0, text_top, x1, text_top + text_h), resolution, align, "top", colors, jitter, rng
    )
    if image_shape is None:
        return None, lines
    left = {"left": x0, "centre": (x0 + x1 - image_w) / 2, "right": x1 - image_w}[align]
    return (left, image_top, left + image_w, image_top + image_h), lines


def _image_block(box: Box, meta: DesignMeta, jitter: float, rng: np.random.Generator) -> ImageBlock:
    """A textured block in 2-4 distinct palette entries, shifted sideways by the alignment jitter."""
    shift = rng.normal(0, jitter) if jitter else 0.0
    weights = texture_weights(meta)
    texture = TEXTURES[int(rng.choice(len(TEXTURES), p=weights))]
    colors = tuple(int(c) for c in rng.permutation(PALETTE_SIZE)[: rng.integers(2, 5)])
    x0, y0, x1, y1 = box
    return ImageBlock(
        (x0 + shift, y0, x1 + shift, y1),
        texture,
        colors,
        int(rng.integers(2**31)),
        float(rng.uniform(0, 0.1)),
    )


def _decorations(
    design: Box,
    margin: float,
    lines: list[TextLine],
    images: list[ImageBlock],
    meta: DesignMeta,
    rng: np.random.Generator,
) -> list[Panel]:
    """Bands, frames, rules and corner discs by goal and tone, kept clear of text and images."""
    serious, energy = meta.seriousness, meta.energy
    dx0, dy0, dx1, dy1 = design
    occupied = [line.box for line in lines] + [image.box for image in images]
    candidates: list[Panel] = []
    if rng.random() < {"announce": 0.55, "sell": 0.45}.get(meta.goal, 0.1) + 0.2 * energy:
        band = margin * rng.uniform(0.35, 0.7)
        top = dy0 if rng.random() < 0.5 else dy1 - band
        candidates.append(Panel((dx0, top, dx1, top + band), "rect", int(rng.integers(1, PALETTE_SIZE))))
    if rng.random() < {"invite": 0.6}.get(meta.goal, 0.1) + 0.3 * serious:
        inset = margin * 0.35
        candidates.append(
            Panel(
                (dx0 + inset, dy0 + inset, dx1 - inset, dy1 - inset),
                "frame",
                int(rng.integers(0, 3)),
                margin * 0.12,
            )
        )
    headlines = [line for line in lines if line.role == "headline"]
    if headlines and rng.random() < 0.15 + 0.45 * serious:
        last = headlines[-1].box
        left = min(line.box[0] for line in headlines)
        right = max(line.box[2] for line in headlines)
        y = last[3] + 0.1 * headlines[-1].size
        candidates.append(
            Panel((left, y, right, y + 0.12 * headlines[-1].size), "rect", int(rng.integers(0, 3)))
        )
    for _ in range(int(rng.integers(0, 4)) if rng.random() < 0.8 * (1 - serious) else 0):
        radius = margin * rng.uniform(1.2, 3.0)
        cx, cy = (dx0, dx1)[int(rng.integers(2))], (dy0, dy1)[int(rng.integers(2))]
        candidates.append(
            Panel(
                (cx - radius, cy - radius, cx + radius, cy + radius),
                "ellipse",
                int(rng.integers(1, PALETTE_SIZE)),
            )
        )
    return [panel for panel in candidates if _clear_of(panel, occupied)]


def _clear_of(panel: Panel, occupied: list[Box]) -> bool:
    """True when the panel's drawn area touches none of the boxes (a frame: all lie inside its hole)."""
    if panel.shape == "frame":
        x0, y0, x1, y1 = panel.box
        t = panel.thickness
        return all(b[0] >= x0 + t and b[1] >= y0 + t and b[2] <= x1 - t and b[3] <= y1 - t for b in occupied)
    return not any(_overlap(panel.box, box) for box in occupied)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
