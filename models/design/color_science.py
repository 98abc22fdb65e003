"""Colour science shared by the renderer and the colour vocabulary: WCAG luminance and contrast, CIELAB, and
HLS colours of a chosen luminance. Plain numpy on sRGB colours given as 0..255 values (last axis R, G, B)."""

from __future__ import annotations

import numpy as np

RGB = tuple[int, int, int]

D65_WHITE = np.array([0.95047, 1.0, 1.08883])  # XYZ of the sRGB white point
SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
LIGHTNESS_STEPS = np.linspace(0.0, 1.0, 1025)


def linear_rgb(rgb: RGB | np.ndarray) -> np.ndarray:
    """sRGB 0..255 -> linear-light RGB in [0, 1]."""
    channel = np.asarray(rgb, dtype=np.float64) / 255.0
    return np.where(channel <= 0.04045, channel / 12.92, ((channel + 0.055) / 1.055) ** 2.4)


def luminance(rgb: RGB | np.ndarray) -> float | np.ndarray:
    """WCAG 2 relative luminance in [0, 1]."""
    value = linear_rgb(rgb) @ np.array([0.2126, 0.7152, 0.0722])
    return float(value) if np.ndim(value) == 0 else value


def contrast_ratio(first: RGB | np.ndarray, second: RGB | np.ndarray) -> float | np.ndarray:
    """WCAG contrast ratio (L_light + 0.05) / (L_dark + 0.05), from 1 (same) to 21 (black on white)."""
    a, b = luminance(first), luminance(second)
    return (np.maximum(a, b) + 0.05) / (np.minimum(a, b) + 0.05)


def cielab(rgb: RGB | np.ndarray) -> np.ndarray:
    """CIELAB (L* in [0, 100], a*, b*) under D65, the space in which colours are compared by eye."""
    xyz = linear_rgb(rgb) @ SRGB_TO_XYZ.T / D65_WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


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
