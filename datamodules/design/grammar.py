"""V_Grammar: four design-quality scores in [0, 1], computed analytically from a Layout.

They read the layout (geometry, sizes, colours), not the pixels, so they are exact, the same at
every resolution and cheap. Areas and centroids are measured on a GRID x GRID sample grid over the
format's rectangle; horizontal distances are in units of the format's width.
"""

from __future__ import annotations

import numpy as np

from datamodules.design.layout import TEXT_ROLES, Box, Layout, shape_coverage
from models.design.color_science import contrast_ratio

GRID = 64
ALIGN_TOLERANCE = 0.01  # an edge 1% of the width off its nearest partner scores exp(-1)
GOOD_CONTRAST = 7.0  # WCAG AAA: this ratio (or more) scores 1
TEXT_WEIGHT, IMAGE_WEIGHT, PANEL_WEIGHT = 1.0, 1.0, 0.5  # visual weight per unit area
BALANCE_RADIUS = 0.3  # centroid this far from the centre (in format units) scores 0
CLEAR_STEP = 1.5  # a size ratio of 1.5 between adjacent text roles is a fully clear step
ENOUGH_WHITESPACE = 0.4  # this share of empty page (or more) scores 1
SIZE_SHARE = 0.75  # hierarchy = 0.75 * size clarity + 0.25 * whitespace


def alignment_score(layout: Layout) -> float:
    """How well element edges line up horizontally.

    Elements are the text lines and image blocks, each with a left edge, centre and right edge.
    An element's misalignment d is the smallest distance from one of its edges to the same kind of
    edge of another element, or to the page guide of that kind (left margin, centre line, right
    margin). Score = mean over elements of exp(-d / ALIGN_TOLERANCE), d in format widths: 1 when
    every element shares an edge with something, falling towards 0 as edges scatter.
    """
    edges = element_edges(layout)
    if len(edges) == 0:
        return 0.0  # nothing to align: read from a sample, a page without text or images
    x0, _, x1, _ = layout.design
    return edge_alignment(edges, np.array(layout.guides), x1 - x0)


def element_edges(layout: Layout) -> np.ndarray:
    """(n, 3) left edge, centre and right edge of each text line and image block, in canvas units."""
    return np.array([_edges(box) for box in _element_boxes(layout)])


def edge_alignment(edges: np.ndarray, guides: np.ndarray, width: float) -> float:
    """`alignment_score` of elements' (n, 3) edges against (3,) guides on a format `width` wide."""
    distance_to_guides = np.abs(edges - guides[None, :])
    pairwise = np.abs(edges[:, None, :] - edges[None, :, :])  # (n, n, 3)
    pairwise[np.arange(len(edges)), np.arange(len(edges))] = np.inf
    nearest = np.minimum(pairwise.min(axis=1), distance_to_guides).min(axis=1) / width
    return float(np.exp(-nearest / ALIGN_TOLERANCE).mean())


def contrast_score(layout: Layout) -> float:
    """Legibility of the text against the background, WCAG style.

    Each text line scores clip(ln(CR) / ln(7), 0, 1), CR being the WCAG contrast ratio between its
    colour and the design background (text is laid out clear of panels and images, so the background
    is what surrounds it): 1 for 7:1 (AAA) or more, 0.77 at 4.5:1 (AA), 0 for text in the background
    colour. Score = mean over lines.
    """
    if not layout.lines:
        return 0.0  # no text is no legible text (read from a sample; every rendered design has text)
    ratios = [contrast_ratio(layout.palette[line.color], layout.background) for line in layout.lines]
    return float(np.clip(np.log(ratios) / np.log(GOOD_CONTRAST), 0.0, 1.0).mean())


def balance_score(layout: Layout) -> float:
    """How close the visual centre of mass is to the centre of the page.

    Visual weight per unit area: image blocks and text line boxes 1, decorative panels 0.5 (on the
    page grid). With c the weighted centroid in format coordinates ((0.5, 0.5) is the centre):
    score = clip(1 - |c - centre| / 0.3, 0, 1): 1 when centred, 0 when it sits 0.3 of the page away.
    """
    weights = _weight_map(layout)
    if weights.sum() == 0:
        return 1.0
    u = (np.arange(GRID) + 0.5) / GRID
    cx = float((weights.sum(axis=0) * u).sum() / weights.sum())
    cy = float((weights.sum(axis=1) * u).sum() / weights.sum())
    return float(np.clip(1.0 - np.hypot(cx - 0.5, cy - 0.5) / BALANCE_RADIUS, 0.0, 1.0))


def hierarchy_score(layout: Layout) -> float:
    """How clearly type sizes rank headline > subhead > body, and how much room the page leaves.

    Size clarity: for each step between adjacent roles present (headline/subhead, subhead/body, or
    headline/body without a subhead), clip(ln(ratio) / ln(1.5), 0, 1), averaged: 1 when each role is
    at least 1.5x the next, 0 when sizes are equal or inverted. Whitespace: share of the page no
    element covers, / 0.4, clipped to 1. Score = 0.75 * size clarity + 0.25 * whitespace.
    """
    sizes = layout.role_sizes()
    present = [sizes[role] for role in TEXT_ROLES if role in sizes]
    steps = [larger / smaller for larger, smaller in zip(present, present[1:], strict=False)]
    clarity = float(np.mean(np.clip(np.log(steps) / np.log(CLEAR_STEP), 0.0, 1.0))) if steps else 0.0
    covered = _weight_map(layout) > 0
    whitespace = min(1.0, (1.0 - covered.mean()) / ENOUGH_WHITESPACE)
    return SIZE_SHARE * clarity + (1 - SIZE_SHARE) * whitespace


def grammar_scores(layout: Layout) -> np.ndarray:
    """float32 (4,): alignment, contrast, balance, hierarchy (schema.GRAMMAR_NAMES order)."""
    return np.array(
        [alignment_score(layout), contrast_score(layout), balance_score(layout), hierarchy_score(layout)],
        dtype=np.float32,
    )


def _element_boxes(layout: Layout) -> list[Box]:
    return [line.box for line in layout.lines] + [block.box for block in layout.images]


def _edges(box: Box) -> tuple[float, float, float]:
    return (box[0], (box[0] + box[2]) / 2, box[2])


def _weight_map(layout: Layout) -> np.ndarray:
    """(GRID, GRID) visual weight sampled over the format's rectangle."""
    x0, y0, x1, y1 = layout.design
    u = (np.arange(GRID) + 0.5) / GRID
    xs, ys = x0 + u * (x1 - x0), y0 + u * (y1 - y0)
    weights = np.zeros((GRID, GRID))
    for panel in layout.panels:
        weights += PANEL_WEIGHT * shape_coverage(panel, xs, ys)
    for block in layout.images:
        weights += IMAGE_WEIGHT * shape_coverage(block.box, xs, ys)
    for line in layout.lines:
        weights += TEXT_WEIGHT * shape_coverage(line.box, xs, ys)
    return weights
