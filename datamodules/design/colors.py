"""Palettes for the renderer: a background and PALETTE_SIZE element colours in WCAG contrast bands, all
snapped to the colour vocabulary (models/design/color_vocabulary.py).

Entry k of the palette has a WCAG contrast ratio against the background inside `CONTRAST_BANDS[k]`, so
the palette ranks legibility (entry 0 strongest … entry 4 faint) and text drawn in a faint entry is the
contrast flaw. Every colour is then replaced by its nearest vocabulary colour in CIELAB; a palette entry
only by one whose contrast with the (snapped) background stays inside its band, on the same side: the
vocabulary's luminance levels are equally spaced in contrast, so every band holds such colours.
"""

from __future__ import annotations

import numpy as np

from models.design.color_science import RGB, cielab, color_with_luminance, contrast_ratio, luminance
from models.design.color_vocabulary import (
    CONTRAST_BANDS,
    VOCABULARY_LAB,
    VOCABULARY_LUMINANCE,
    VOCABULARY_RGB,
)

PALETTE_SIZE = len(CONTRAST_BANDS)  # element colours per design
# backgrounds are kept far from the letterbox's luminance (0.22)
LIGHT_BACKGROUND_LUMINANCE = (0.55, 0.92)
DARK_BACKGROUND_LUMINANCE = (0.006, 0.035)


def nearest_vocabulary_color(rgb: RGB, allowed: np.ndarray | None = None) -> RGB:
    """The vocabulary colour nearest `rgb` in CIELAB, among the `allowed` entries (a boolean mask) if given."""
    distance = np.linalg.norm(VOCABULARY_LAB - cielab(rgb), axis=-1)
    if allowed is not None:
        distance = np.where(allowed, distance, np.inf)
    return tuple(int(c) for c in VOCABULARY_RGB[int(distance.argmin())])  # type: ignore[return-value]


def make_palette(
    rng: np.random.Generator, base_hue: float, saturation: float, dark_background: bool, hue_spread: float
) -> tuple[RGB, tuple[RGB, ...]]:
    """(background, palette) of vocabulary colours: entry k has contrast against the background inside
    CONTRAST_BANDS[k], lighter than a dark background and darker than a light one.

    `base_hue` in [0, 1) sets the family (the goal's), `saturation` the vividness (energy, playfulness),
    `hue_spread` how far entries wander from the base hue (0: monochrome, 0.5: complementary).
    """
    low, high = DARK_BACKGROUND_LUMINANCE if dark_background else LIGHT_BACKGROUND_LUMINANCE
    background = nearest_vocabulary_color(
        color_with_luminance(
            base_hue + rng.normal(0, 0.03), saturation * rng.uniform(0.1, 0.6), rng.uniform(low, high)
        )
    )
    lum_background = luminance(background)
    lighter = lum_background < VOCABULARY_LUMINANCE
    ratio_to_background = contrast_ratio(VOCABULARY_RGB, background)
    palette = []
    for band_low, band_high in CONTRAST_BANDS:
        ratio = rng.uniform(band_low, band_high)
        # text is lighter than a dark background, darker than a light one
        target = (
            ratio * (lum_background + 0.05) - 0.05
            if dark_background
            else (lum_background + 0.05) / ratio - 0.05
        )
        hue = base_hue + hue_spread * rng.choice([-1.0, 0.0, 0.5, 1.0]) + rng.normal(0, 0.02)
        wanted = color_with_luminance(hue, float(np.clip(saturation * rng.uniform(0.7, 1.2), 0, 1)), target)
        in_band = (
            (lighter == dark_background)
            & (ratio_to_background >= band_low)
            & (ratio_to_background <= band_high)
        )
        palette.append(nearest_vocabulary_color(wanted, in_band))
    return background, tuple(palette)
