"""Stimulus generators: the "world" (screen) of one trial, and its crop at a gaze position.

A world is a stack of canvases larger than the stored frame plus, per frame, which canvas is on the
screen (a static image needs one canvas for the whole trial). Canvases hold contrast in [-1, 1]
(0 = mean grey). A frame is the canvas cropped around the gaze with a sub-pixel bilinear shift, so
the same world gives the image the neurons see (at the true gaze) and the stored stimulus (at the
measured gaze). Coordinates: x to the right, y up, in degrees; the canvas centre is gaze (0, 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from datamodules.v1.simulator.tiers import SizeSpec

GREY, CONTRAST_SCALE = 128.0, 127.0  # uint8 pixel = GREY + CONTRAST_SCALE * contrast
GABORIUM_DENSITY = 1.5  # Gabor elements per deg^2 per frame
GABORIUM_SF_CPD = (2.0, 3.0, 4.5)
GABORIUM_CYCLES_PER_SIGMA = 0.45  # element envelope sigma = this / sf


@dataclass(frozen=True)
class Geometry:
    frame_px: int
    canvas_px: int
    pixels_per_degree: float
    rate_hz: float

    @classmethod
    def of(cls, size: SizeSpec, gaze_margin_deg: float) -> Geometry:
        """Canvas big enough for any gaze within the size's range plus `gaze_margin_deg` (calibration error)."""
        margin_px = math.ceil((size.gaze_range_deg + gaze_margin_deg) * size.pixels_per_degree) + 2
        return cls(size.frame_px, size.frame_px + 2 * margin_px, size.pixels_per_degree, size.rate_hz)

    def canvas_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) in degrees of every canvas pixel, each (canvas_px, canvas_px)."""
        axis = (np.arange(self.canvas_px) - (self.canvas_px - 1) / 2) / self.pixels_per_degree
        return np.meshgrid(axis, -axis)


@dataclass(frozen=True)
class World:
    canvases: np.ndarray  # float32 (K, canvas, canvas) contrast
    index: np.ndarray  # int64 (F,): the canvas shown at each frame

    @property
    def num_frames(self) -> int:
        return len(self.index)


def crop(world: World, gaze_deg: np.ndarray, geometry: Geometry) -> np.ndarray:
    """float32 (F, H, W) contrast: each frame's canvas cropped around its gaze, bilinear sub-pixel shift."""
    ppd, size, centre = geometry.pixels_per_degree, geometry.frame_px, (geometry.canvas_px - 1) / 2
    gaze = np.asarray(gaze_deg, dtype=np.float64)
    col0 = centre + gaze[:, 0] * ppd - (size - 1) / 2
    row0 = centre - gaze[:, 1] * ppd - (size - 1) / 2
    c0, r0 = np.floor(col0).astype(np.int64), np.floor(row0).astype(np.int64)
    if min(c0.min(), r0.min()) < 0 or max(c0.max(), r0.max()) + size >= geometry.canvas_px:
        raise ValueError("gaze outside the canvas; the simulator's canvas margin is too small")
    # One gather of the (H+1, W+1) patch under each frame, then the four bilinear neighbours as slices.
    windows = np.lib.stride_tricks.sliding_window_view(world.canvases, (size + 1, size + 1), axis=(1, 2))
    patch = windows[world.index, r0, c0]
    fc = (col0 - c0)[:, None, None].astype(np.float32)
    fr = (row0 - r0)[:, None, None].astype(np.float32)
    top = (1 - fc) * patch[:, :-1, :-1] + fc * patch[:, :-1, 1:]
    bottom = (1 - fc) * patch[:, 1:, :-1] + fc * patch[:, 1:, 1:]
    return (1 - fr) * top + fr * bottom


def to_pixels(contrast: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(GREY + CONTRAST_SCALE * contrast), 0, 255).astype(np.uint8)


def to_contrast(pixels: np.ndarray) -> np.ndarray:
    return (pixels.astype(np.float32) - np.float32(GREY)) / np.float32(CONTRAST_SCALE)


def gaborium(rng: np.random.Generator, frames: int, geometry: Geometry) -> World:
    """Sparse dynamic Gabor noise: every frame a new Poisson number of randomly placed Gabor elements.

    A round-envelope Gabor is separable, cos(kx dx + ky dy + phase) = Re(e^{i(kx dx + phase)} e^{i ky dy}),
    so a frame is the real part of one (rows x elements) @ (elements x columns) product.
    """
    canvas, ppd = geometry.canvas_px, geometry.pixels_per_degree
    extent = canvas / ppd / 2
    counts = rng.poisson(GABORIUM_DENSITY * (2 * extent) ** 2, size=frames)
    shape = (frames, max(1, int(counts.max(initial=0))))
    present = np.arange(shape[1])[None, :] < counts[:, None]
    sf = rng.choice(GABORIUM_SF_CPD, size=shape)
    ori = rng.uniform(0, np.pi, size=shape)
    phase = rng.uniform(0, 2 * np.pi, size=shape)
    amplitude = rng.uniform(0.4, 1.0, size=shape) * rng.choice([-1.0, 1.0], size=shape) * present
    cx, cy = rng.uniform(-extent, extent, size=shape), rng.uniform(-extent, extent, size=shape)
    sigma = (GABORIUM_CYCLES_PER_SIGMA / sf)[..., None].astype(np.float32)
    kx, ky = (2 * np.pi * sf * np.cos(ori))[..., None], (2 * np.pi * sf * np.sin(ori))[..., None]
    axis = ((np.arange(canvas) - (canvas - 1) / 2) / ppd).astype(np.float32)
    dx = axis - cx[..., None].astype(np.float32)  # (F, E, canvas)
    dy = -axis - cy[..., None].astype(np.float32)  # row r has y = -axis[r]
    column_envelope = amplitude[..., None].astype(np.float32) * _gaussian(dx, sigma)
    column_phase = (kx * dx + phase[..., None]).astype(np.float32)
    row_envelope = _gaussian(dy, sigma)
    row_phase = (ky * dy).astype(np.float32)
    rows = np.concatenate([row_envelope * np.cos(row_phase), -row_envelope * np.sin(row_phase)], axis=1)
    columns = np.concatenate(
        [column_envelope * np.cos(column_phase), column_envelope * np.sin(column_phase)], axis=1
    )
    canvases = np.ascontiguousarray(np.swapaxes(rows, 1, 2)) @ columns
    return World(np.clip(canvases, -1, 1), np.arange(frames))


def _gaussian(distance: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """exp(-d^2 / 2 sigma^2), exactly 0 beyond 5 sigma (float32 subnormals would slow the matmul 10x)."""
    z2 = (distance / sigma) ** 2
    return np.where(z2 < 25, np.exp(-z2 / 2), 0).astype(np.float32)


def natural_image(rng: np.random.Generator, geometry: Geometry) -> np.ndarray:
    """float32 (canvas, canvas) natural-like image: 1/f noise with occluding shapes (hard edges)."""
    canvas, ppd = geometry.canvas_px, geometry.pixels_per_degree
    freq = np.fft.fftfreq(canvas, d=1 / ppd)
    radial = np.hypot(*np.meshgrid(freq, freq))
    amplitude = 1.0 / np.maximum(radial, 0.25)
    amplitude[0, 0] = 0.0
    spectrum = amplitude * np.exp(2j * np.pi * rng.uniform(size=(canvas, canvas)))
    texture = np.fft.ifft2(spectrum).real
    image = 0.25 * texture / texture.std()
    x, y = geometry.canvas_coords()
    extent = canvas / ppd / 2
    for _ in range(int(rng.integers(3, 8))):
        cx, cy = rng.uniform(-extent, extent, size=2)
        a, b = rng.uniform(0.2, 1.0, size=2)
        angle = rng.uniform(0, np.pi)
        u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
        v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
        inside = (u / a) ** 2 + (v / b) ** 2 <= 1 if rng.uniform() < 0.5 else (abs(u) <= a) & (abs(v) <= b)
        image[inside] = rng.uniform(-0.6, 0.6) + 0.3 * image[inside]
    return np.clip(image, -1, 1).astype(np.float32)


def backimage(rng: np.random.Generator, frames: int, geometry: Geometry) -> World:
    """One static natural-like image per trial, explored by free viewing."""
    return World(natural_image(rng, geometry)[None], np.zeros(frames, dtype=np.int64))


def gratings(rng: np.random.Generator, frames: int, geometry: Geometry) -> World:
    """Full-field gratings in 250-500 ms epochs (random orientation, SF, drift, contrast), some blank."""
    rate = geometry.rate_hz
    kx, ky, omega, phase0, contrast = (np.zeros(frames) for _ in range(5))
    t = 0
    while t < frames:
        length = int(rng.integers(round(0.25 * rate), round(0.5 * rate) + 1))
        epoch = slice(t, t + length)
        ori = np.deg2rad(rng.choice(np.arange(0, 180, 15)))
        sf = rng.choice([1.0, 2.0, 3.0, 4.5])
        kx[epoch], ky[epoch] = 2 * np.pi * sf * np.cos(ori), 2 * np.pi * sf * np.sin(ori)
        omega[epoch] = 2 * np.pi * rng.choice([0.0, 2.0, 4.0, 8.0]) / rate
        phase0[epoch] = rng.uniform(0, 2 * np.pi) - omega[t] * t
        contrast[epoch] = 0.0 if rng.uniform() < 0.15 else rng.choice([0.25, 0.5, 1.0])
        t += length
    # cos(kx x + ky y - phase) = Re(e^{i ky y} e^{i (kx x - phase)}): an outer product per frame.
    axis = (np.arange(geometry.canvas_px) - (geometry.canvas_px - 1) / 2) / geometry.pixels_per_degree
    phase = phase0 + omega * np.arange(frames)
    rows = np.exp(1j * ky[:, None] * -axis[None, :]).astype(np.complex64)  # y is up: row r has y = -axis[r]
    cols = (contrast[:, None] * np.exp(1j * (kx[:, None] * axis[None, :] - phase[:, None]))).astype(
        np.complex64
    )
    canvases = rows.real[:, :, None] * cols.real[:, None, :] - rows.imag[:, :, None] * cols.imag[:, None, :]
    return World(canvases, np.arange(frames))


def fixrsvp(rng: np.random.Generator, frames: int, geometry: Geometry) -> World:
    """Rapid serial visual presentation: natural-like images on for 100 ms, grey for 50 ms, repeating.

    Called with the generator of the repeated sequence, so every repeat shows the same frames.
    """
    on, off = round(0.1 * geometry.rate_hz), round(0.05 * geometry.rate_hz)
    cycle = np.arange(frames) // (on + off)
    showing = np.arange(frames) % (on + off) < on
    images = [natural_image(rng, geometry) for _ in range(int(cycle.max()) + 1)]
    canvases = np.stack([np.zeros_like(images[0]), *images])
    return World(canvases, np.where(showing, cycle + 1, 0))


GENERATORS = {"gaborium": gaborium, "backimage": backimage, "gratings": gratings, "fixrsvp": fixrsvp}
