"""Procedural image-block textures: a palette-entry label per sample point plus a smooth shading field.

Textures are defined in canvas units (not pixels), so a block looks the same at every resolution.
Labels are hard-edged palette entries (the colour-ID map); the shading is a gentle linear light
gradient (|1 - factor| <= the block's `shading`) that makes blocks look less flat without changing
which palette colour a pixel is.
"""

from __future__ import annotations

import numpy as np

from datamodules.design.layout import ImageBlock
from datamodules.design.metadata import DesignMeta

TEXTURES = ("stripes", "checker", "rings", "dots", "blobs", "landscape", "bands")
# preference of each goal for each texture (same order as TEXTURES)
GOAL_TEXTURES = {
    "inform": (1, 2, 0, 1, 0, 1, 3),
    "promote": (1, 0, 1, 1, 2, 3, 1),
    "announce": (3, 1, 1, 1, 1, 0, 2),
    "invite": (0, 0, 3, 2, 2, 1, 1),
    "sell": (3, 1, 0, 3, 1, 0, 1),
}
PLAYFUL_TEXTURES = ("rings", "dots", "blobs")


def texture_weights(meta: DesignMeta) -> np.ndarray:
    """Probabilities over TEXTURES: the goal's preferences, round shapes for playful tones."""
    weights = np.array(GOAL_TEXTURES[meta.goal], dtype=np.float64) + 0.25
    playful = np.array([name in PLAYFUL_TEXTURES for name in TEXTURES])
    weights *= np.where(playful, 1.5 - meta.seriousness, 0.5 + meta.seriousness)
    return weights / weights.sum()


def texture_labels(block: ImageBlock, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Index into `block.colors` (int, shape (len(ys), len(xs))) at the sample points (canvas units)."""
    rng = np.random.default_rng(block.seed)
    x0, y0, x1, y1 = block.box
    x, y = np.meshgrid(xs, ys)
    n = len(block.colors)
    period = rng.uniform(0.03, 0.1)
    if block.texture == "stripes":
        angle = rng.choice([0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]) + rng.normal(0, 0.1)
        return np.floor((x * np.cos(angle) + y * np.sin(angle)) / period).astype(np.int64) % n
    if block.texture == "checker":
        return (np.floor(x / period).astype(np.int64) + np.floor(y / period).astype(np.int64)) % n
    if block.texture == "rings":
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        return np.floor(np.hypot(x - cx, y - cy) / period).astype(np.int64) % n
    if block.texture == "dots":
        radius = period * rng.uniform(0.2, 0.4)
        near = np.hypot((x - x0) % period - period / 2, (y - y0) % period - period / 2) < radius
        return np.where(near, 1 + (np.floor(x / period).astype(np.int64) % max(n - 1, 1)), 0) % n
    if block.texture == "blobs":
        labels = np.zeros(x.shape, dtype=np.int64)
        span = max(x1 - x0, y1 - y0)
        for i in range(int(rng.integers(2, 7))):
            cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
            labels[np.hypot(x - cx, y - cy) < span * rng.uniform(0.1, 0.35)] = 1 + i % (n - 1)
        return labels
    if block.texture == "landscape":
        labels = np.zeros(x.shape, dtype=np.int64)  # sky
        sun_x, sun_y = rng.uniform(x0, x1), y0 + (y1 - y0) * rng.uniform(0.15, 0.4)
        labels[np.hypot(x - sun_x, y - sun_y) < (y1 - y0) * rng.uniform(0.08, 0.16)] = 1 % n
        for layer in range(1, 3):
            base = y0 + (y1 - y0) * (0.35 + 0.25 * layer + rng.normal(0, 0.04))
            ridge = base + (y1 - y0) * 0.12 * np.sin(x * rng.uniform(15, 45) + rng.uniform(0, 6.3))
            labels[y > ridge] = (layer + 1) % n if n > 2 else layer % n
        return labels
    # bands: a linear gradient quantised into one band per colour
    angle = rng.uniform(0, 2 * np.pi)
    t = (x - x0) * np.cos(angle) + (y - y0) * np.sin(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-9)
    return np.minimum((t * n).astype(np.int64), n - 1)


def shading(block: ImageBlock, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Multiplicative light factor in [1 - shading, 1 + shading], a linear ramp across the block."""
    rng = np.random.default_rng(block.seed + 1)
    x0, y0, x1, y1 = block.box
    angle = rng.uniform(0, 2 * np.pi)
    u = ((xs - x0) / max(x1 - x0, 1e-9) - 0.5)[None, :]
    v = ((ys - y0) / max(y1 - y0, 1e-9) - 0.5)[:, None]
    ramp = np.clip(u * np.cos(angle) + v * np.sin(angle), -0.5, 0.5) * 2
    return 1.0 + block.shading * ramp
