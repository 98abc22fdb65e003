"""Drawing the procedural elements of a print on a pigment-index canvas: bokashi sky, mist, sun, mountains,
waves and the title cartouche.

Everything is drawn at the target resolution with hard edges, so every pixel stays exactly one pigment.
Coordinates are in [0, 1] (pixel centres), y downwards, so a print's composition is the same at any size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Canvas:
    """An (R, R) array of pigment indices plus the pixel-centre coordinates the shapes are drawn with."""

    def __init__(self, resolution: int, names: Sequence[str], background: str) -> None:
        self.resolution = resolution
        self.index_of = {name: i for i, name in enumerate(names)}
        self.pixels = np.full((resolution, resolution), self.index_of[background], dtype=np.uint8)
        centres = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution
        self.y = centres[:, None]
        self.x = centres[None, :]
        self.line = max(1, resolution // 64)  # outline width in pixels: thin at every size

    def paint(self, mask: np.ndarray, pigment: str) -> None:
        np.copyto(self.pixels, self.index_of[pigment], where=mask)

    def paint_levels(self, levels: np.ndarray, pigments: Sequence[str]) -> None:
        """Colour a level map (0 = darkest) with `pigments` (darkest first)."""
        lookup = np.array([self.index_of[name] for name in pigments], dtype=np.uint8)
        self.pixels[...] = lookup[levels]

    def outline(self, mask: np.ndarray, pigment: str = "sumi") -> None:
        """Draw the inner rim of `mask` (pixels with a 4-neighbour outside it; the image border is not an edge)."""
        mask = np.broadcast_to(mask, self.pixels.shape)
        self.paint(mask & ~_eroded(mask, self.line), pigment)

    def region_edges(self, levels: np.ndarray, pigment: str = "sumi") -> None:
        """Key-block lines between the regions of a level map: the lighter side of every boundary."""
        edges = np.zeros(levels.shape, dtype=bool)
        for axis in (0, 1):
            step = np.diff(levels.astype(np.int8), axis=axis)
            if axis == 0:
                edges[1:] |= step < 0
                edges[:-1] |= step > 0
            else:
                edges[:, 1:] |= step < 0
                edges[:, :-1] |= step > 0
        self.paint(edges, pigment)


def _eroded(mask: np.ndarray, width: int) -> np.ndarray:
    """`mask` shrunk by `width` 4-neighbour steps; pixels beyond the border count as their edge pixel."""
    inner = mask.copy()
    for _ in range(width):
        shrunk = inner.copy()
        shrunk[1:] &= inner[:-1]
        shrunk[:-1] &= inner[1:]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return inner


def bokashi_sky(canvas: Canvas, bottom: float, pigments: Sequence[str]) -> None:
    """A stepped gradient from the top edge to `bottom`: one flat band per pigment (top pigment first)."""
    band = np.minimum((canvas.y / bottom * len(pigments)).astype(np.intp), len(pigments))
    for i, pigment in enumerate(pigments):
        canvas.paint(band == i, pigment)


def sun(canvas: Canvas, rng: np.random.Generator, horizon: float, pigment: str = "vermilion") -> None:
    cx, cy, radius = (
        rng.uniform(0.2, 0.8),
        rng.uniform(0.12, max(0.13, horizon - 0.15)),
        rng.uniform(0.07, 0.13),
    )
    canvas.paint((canvas.x - cx) ** 2 + (canvas.y - cy) ** 2 < radius**2, pigment)


def mist_band(canvas: Canvas, rng: np.random.Generator, y: float, pigment: str) -> None:
    """Suyari-gasumi: a horizontal band of mist with rounded ends."""
    half = rng.uniform(0.035, 0.06)
    left, right = sorted(rng.uniform(-0.3, 1.3, 2))
    right = max(right, left + 0.4)
    dx = np.maximum(np.maximum(left - canvas.x, canvas.x - right), 0.0)
    canvas.paint(dx**2 + (canvas.y - y) ** 2 < half**2, pigment)


def mountain(
    canvas: Canvas,
    rng: np.random.Generator,
    peak: tuple[float, float],
    base: float,
    body: str,
    snow: str = "paper",
) -> None:
    """A Fuji-like cone: flat summit, concave slopes reaching `base` (y) half a print away, a jagged snow cap."""
    px, py = peak
    reach = rng.uniform(0.4, 0.65)  # horizontal distance from the summit to the foot of the slope
    flat = rng.uniform(0.01, 0.04)
    run = np.maximum(np.abs(canvas.x - px) - flat, 0.0) / reach
    ridge = py + (base - py) * run**0.7
    cone = (canvas.y >= ridge) & (canvas.y <= base + 0.02)
    canvas.paint(cone, body)
    teeth = rng.uniform(14, 24)
    jag = np.abs(((canvas.x - px) * teeth) % 1.0 - 0.5)  # triangle wave: snow tongues running down
    snow_line = py + (base - py) * rng.uniform(0.35, 0.5) * (0.6 + 0.9 * jag)
    canvas.paint(cone & (canvas.y < snow_line), snow)
    canvas.outline(cone)


def waves(
    canvas: Canvas,
    rng: np.random.Generator,
    top: float,
    height: float,
    body: str,
    stripes: str,
    foam: str = "paper",
) -> None:
    """A row of breaking waves from `top` down to the bottom edge: slow backs, steep fronts facing left,
    white foam on the crests and lighter stripes following the surface."""
    crests = rng.uniform(1.5, 3.5)
    phase = rng.uniform(0, 1)
    s = (phase - crests * canvas.x) % 1.0  # 0 at a crest's steep front, rising to 1 up its back
    lift = (1.0 - s) ** 2.2
    surface = top + height * (1.0 - lift)
    depth = canvas.y - surface
    water = depth >= 0
    canvas.paint(water, body)
    period = max(height * 0.45, 3.0 / canvas.resolution)
    stripe = (depth % period) < 1.0 / canvas.resolution * canvas.line
    canvas.paint(water & stripe & (depth > period * 0.9), stripes)
    foam_depth = max(height * 0.18, 1.5 / canvas.resolution)
    canvas.paint(water & (depth < foam_depth) & (lift > 0.45), foam)
    canvas.outline(water)


def curling_wave(canvas: Canvas, rng: np.random.Generator, centre: tuple[float, float], body: str) -> None:
    """The great wave's curl: a thick arc of water over its hollow, with a foam rim on the outside."""
    cx, cy = centre
    radius = rng.uniform(0.18, 0.28)
    dist = np.sqrt((canvas.x - cx) ** 2 + (canvas.y - cy) ** 2)
    hollow = (
        np.sqrt((canvas.x - cx - 0.2 * radius) ** 2 + (canvas.y - cy - 0.15 * radius) ** 2) < 0.6 * radius
    )
    arc = (dist < radius) & ~hollow & ((canvas.y < cy + 0.3 * radius) | (canvas.x > cx))
    canvas.paint(arc, body)
    rim = arc & (dist > radius - max(0.12 * radius, 1.5 / canvas.resolution)) & (canvas.y < cy)
    canvas.paint(rim, "paper")
    canvas.outline(arc)


def cartouche(canvas: Canvas, rng: np.random.Generator, fill: str) -> None:
    """The title cartouche: a tall outlined box near a top corner with a column of sumi 'characters'."""
    size = canvas.resolution
    width, height = max(5, round(size * 0.14)), max(9, round(size * 0.34))
    left = 1 + (0 if rng.random() < 0.5 else size - width - 2)
    top = 1 + round(rng.uniform(0, 0.06) * size)
    box = np.zeros(canvas.pixels.shape, dtype=bool)
    box[top : top + height, left : left + width] = True
    canvas.paint(box, fill)
    canvas.outline(box)
    rows = np.arange(size)[:, None]
    pitch = max(3, width - 2)  # one 'character' per roughly square cell
    glyphs = box & ((rows - top - 2) % pitch < pitch - 1) & (rows > top + 1) & (rows < top + height - 2)
    middle = left + width // 2
    column = np.zeros_like(box)
    column[:, max(left + 2, middle - canvas.line) : min(left + width - 2, middle + canvas.line + 1)] = True
    canvas.paint(glyphs & column, "sumi")
