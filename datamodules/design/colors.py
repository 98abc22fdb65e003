"""Colour science for the renderer: WCAG luminance and contrast, and palettes built in contrast bands.

A design has a background colour and PALETTE_SIZE element colours. Entry k of the palette is drawn
with a WCAG contrast ratio against the background inside `CONTRAST_BANDS[k]`, so a palette index
says how legible text in that colour is: the colour-ID map (which holds indices, not RGB) then
carries the information the contrast grammar score needs.
"""

from __future__ import annotations

import numpy as np

from models.design.schema import PALETTE_SIZE

RGB = tuple[int, int, int]

OUTSIDE_RGB: RGB = (128, 128, 128)  # the letterbox; backgrounds are kept far from its luminance (0.22)
# WCAG contrast ratio ranges against the background, one per palette entry (most to least legible).
CONTRAST_BANDS = ((7.0, 11.0), (4.5, 7.0), (3.0, 4.5), (1.8, 3.0), (1.15, 1.8))
LIGHT_BACKGROUND_LUMINANCE = (0.55, 0.92)
DARK_BACKGROUND_LUMINANCE = (0.006, 0.035)

assert len(CONTRAST_BANDS) == PALETTE_SIZE


def luminance(rgb: RGB | np.ndarray) -> float | np.ndarray:
    """WCAG 2 relative luminance in [0, 1] of sRGB colours given as 0..255 values (last axis: R, G, B)."""
    channel = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(channel <= 0.04045, channel / 12.92, ((channel + 0.055) / 1.055) ** 2.4)
    value = linear @ np.array([0.2126, 0.7152, 0.0722])
    return float(value) if np.ndim(value) == 0 else value


def contrast_ratio(first: RGB, second: RGB) -> float:
    """WCAG contrast ratio (L_light + 0.05) / (L_dark + 0.05), from 1 (same) to 21 (black on white)."""
    a, b = luminance(first), luminance(second)
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


LIGHTNESS_STEPS = np.linspace(0.0, 1.0, 1025)


def color_with_luminance(hue: float, saturation: float, target: float) -> RGB:
    """The uint8 colour of HLS (hue, lightness, saturation) whose luminance is nearest `target`.

    Lightness is searched on a fine grid (1025 steps, finer than uint8 quantisation): every RGB
    channel of HLS grows with lightness, so so does luminance and the nearest one is unique.
    """
    candidates = _hls_rgb(hue % 1.0, LIGHTNESS_STEPS, float(np.clip(saturation, 0.0, 1.0)))
    best = int(np.abs(luminance(candidates) - target).argmin())
    return tuple(int(c) for c in candidates[best])  # type: ignore[return-value]


def _hls_rgb(hue: float, lightness: np.ndarray, saturation: float) -> np.ndarray:
    """Vectorised colorsys.hls_to_rgb over lightness, as uint8-valued floats (n, 3)."""
    high = np.where(
        lightness <= 0.5, lightness * (1.0 + saturation), lightness + saturation - lightness * saturation
    )
    low = 2.0 * lightness - high
    channels = []
    for offset in (1 / 3, 0.0, -1 / 3):
        h = (hue + offset) % 1.0
        if h < 1 / 6:
            value = low + (high - low) * h * 6.0
        elif h < 0.5:
            value = high
        elif h < 2 / 3:
            value = low + (high - low) * (2 / 3 - h) * 6.0
        else:
            value = low
        channels.append(value)
    return np.rint(np.stack(channels, axis=-1) * 255.0)


def make_palette(
    rng: np.random.Generator, base_hue: float, saturation: float, dark_background: bool, hue_spread: float
) -> tuple[RGB, tuple[RGB, ...]]:
    """(background, palette): entry k has contrast against the background inside CONTRAST_BANDS[k].

    `base_hue` in [0, 1) sets the family (the goal's), `saturation` the vividness (energy, playfulness),
    `hue_spread` how far entries wander from the base hue (0: monochrome, 0.5: complementary).
    """
    low, high = DARK_BACKGROUND_LUMINANCE if dark_background else LIGHT_BACKGROUND_LUMINANCE
    background = color_with_luminance(
        base_hue + rng.normal(0, 0.03), saturation * rng.uniform(0.1, 0.6), rng.uniform(low, high)
    )
    lum_background = luminance(background)
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
        palette.append(
            color_with_luminance(hue, float(np.clip(saturation * rng.uniform(0.7, 1.2), 0, 1)), target)
        )
    return background, tuple(palette)
