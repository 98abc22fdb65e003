"""Procedural ukiyo-e-like prints: a posterised crop of a scikit-image photo in woodblock pigments, with
sumi key-block outlines, under a scene's procedural bands (bokashi sky, mist, Fuji, breaking waves).

`render_print(index, resolution, seed)` is deterministic in its arguments (a numpy Generator seeded
from them, never the global RNG); the composition depends on (seed, index, split) only, so one print
looks the same at 32, 64 or 128 pixels. Every pixel is exactly one colour of `models.ukiyoe.schema.PIGMENTS`.
"""

from __future__ import annotations

import numpy as np

from datamodules.ukiyoe import bands
from datamodules.ukiyoe.photos import PHOTO_NAMES, SUBJECTS, posterised_crop
from models.ukiyoe.schema import PIGMENTS

PIGMENT_NAMES = tuple(PIGMENTS)
PIGMENT_ARRAY = np.array([PIGMENTS[name] for name in PIGMENT_NAMES], dtype=np.uint8)

# Scene classes (the labels): which procedural bands are laid over the photo crop. Sorted, so the labels
# equal those torchvision's ImageFolder gives the generated folder.
SCENES = ("figure", "mountain", "sky", "wave")
SPLITS = ("train", "val", "test")  # separate seed streams: the splits never share a print

# Pigments of the posterised photo, darkest first (three to five flat levels).
COLOURWAYS = (
    ("indigo", "prussian_blue", "light_blue", "paper"),
    ("sumi", "tobi", "vermilion", "ochre", "paper"),
    ("indigo", "rokusho", "ochre", "paper"),
    ("sumi", "nezumi", "beni", "paper"),
    ("tobi", "ochre", "paper"),
    ("sumi", "indigo", "light_blue", "ochre", "paper"),
    ("indigo", "vermilion", "paper"),
)
# Bokashi skies, top band first.
SKIES = (
    ("prussian_blue", "light_blue", "paper"),
    ("indigo", "prussian_blue", "light_blue"),
    ("vermilion", "ochre", "paper"),
    ("beni", "ochre", "paper"),
    ("prussian_blue", "light_blue", "paper", "ochre"),
)
MOUNTAIN_BODIES = ("indigo", "prussian_blue", "vermilion", "tobi", "rokusho")


def scene_of(index: int) -> int:
    """The scene label of print `index`: classes are balanced and in a fixed cycle."""
    return index % len(SCENES)


def render_print(index: int, resolution: int, seed: int = 0, split: str = "train") -> tuple[np.ndarray, int]:
    """(uint8 (R, R, 3) print, scene label) of print `index` of `split`, deterministic in the arguments."""
    if resolution < 8:
        raise ValueError(f"resolution={resolution}: a print needs at least 8 pixels")
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    label = scene_of(index)
    canvas = bands.Canvas(resolution, PIGMENT_NAMES, "paper")
    COMPOSERS[SCENES[label]](canvas, rng)
    return PIGMENT_ARRAY[canvas.pixels], label


def _photo(
    canvas: bands.Canvas,
    rng: np.random.Generator,
    zoom: tuple[float, float],
    names: tuple[str, ...] = PHOTO_NAMES,
) -> None:
    colourway = COLOURWAYS[rng.integers(len(COLOURWAYS))]
    levels = posterised_crop(rng, canvas.resolution, len(colourway), zoom, names)
    canvas.paint_levels(levels, colourway)
    canvas.region_edges(levels)


def _sky(canvas: bands.Canvas, rng: np.random.Generator, bottom: float) -> None:
    bands.bokashi_sky(canvas, bottom, SKIES[rng.integers(len(SKIES))])


def _wave(canvas: bands.Canvas, rng: np.random.Generator) -> None:
    _photo(canvas, rng, (0.5, 1.0))
    horizon = rng.uniform(0.3, 0.45)
    _sky(canvas, rng, horizon)
    if rng.random() < 0.5:  # a distant Fuji between the waves
        bands.mountain(canvas, rng, (rng.uniform(0.3, 0.7), horizon - 0.08), horizon + 0.1, "indigo")
    bands.waves(canvas, rng, horizon + 0.05, rng.uniform(0.06, 0.1), "prussian_blue", "light_blue")
    if rng.random() < 0.5:
        bands.curling_wave(canvas, rng, (rng.uniform(0.25, 0.75), rng.uniform(0.55, 0.65)), "prussian_blue")
    bands.waves(canvas, rng, rng.uniform(0.6, 0.7), rng.uniform(0.12, 0.2), "prussian_blue", "light_blue")


def _mountain(canvas: bands.Canvas, rng: np.random.Generator) -> None:
    _photo(canvas, rng, (0.5, 1.0))
    base = rng.uniform(0.6, 0.8)
    _sky(canvas, rng, base)
    peak = (rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3))
    bands.mountain(canvas, rng, peak, base, MOUNTAIN_BODIES[rng.integers(len(MOUNTAIN_BODIES))])
    if rng.random() < 0.5:
        bands.mist_band(canvas, rng, base - rng.uniform(0.0, 0.1), "paper")
    if rng.random() < 0.4:
        bands.cartouche(canvas, rng, "ochre")


def _open_sky(canvas: bands.Canvas, rng: np.random.Generator) -> None:
    _photo(canvas, rng, (0.4, 1.0))
    horizon = rng.uniform(0.5, 0.7)
    _sky(canvas, rng, horizon)
    if rng.random() < 0.7:
        bands.sun(canvas, rng, horizon)
    for y in np.sort(rng.uniform(0.15, horizon, rng.integers(1, 4))):
        bands.mist_band(canvas, rng, y, ("paper", "ochre", "beni")[rng.integers(3)])
    if rng.random() < 0.4:
        bands.cartouche(canvas, rng, "paper")


def _figure(canvas: bands.Canvas, rng: np.random.Generator) -> None:
    _photo(canvas, rng, (0.45, 0.9), SUBJECTS)
    if rng.random() < 0.5:
        _sky(canvas, rng, rng.uniform(0.1, 0.2))
    bands.cartouche(canvas, rng, ("paper", "ochre", "beni")[rng.integers(3)])


COMPOSERS = {"wave": _wave, "mountain": _mountain, "sky": _open_sky, "figure": _figure}
