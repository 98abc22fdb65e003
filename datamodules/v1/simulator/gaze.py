"""Eye movements within a trial, blinks, and the eye tracker's (mis)measurement of the gaze.

Free viewing: fixations (~250 ms, gamma-distributed) with diffusive drift, joined by ~30 ms
saccades to random targets within the size's gaze range. fixrsvp: one steady fixation with a
slow drift, the same trace for every repeat of a sequence. The measured gaze is the true gaze plus
a smooth per-session calibration field (0.1-0.5 deg; `CalibrationField`) plus white tracker noise.
Degrees, x right, y up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.v1.simulator.tiers import SizeSpec

FIXATION_MEAN_S, FIXATION_GAMMA_SHAPE = 0.25, 5.0
SACCADE_S = 0.03
DRIFT_DEG_PER_SQRT_S = 0.1
BLINK_RATE_HZ, BLINK_S = 0.2, (0.1, 0.2)
TRACKER_NOISE_DEG = 0.01
CALIBRATION_RANGE_DEG = (0.1, 0.5)  # magnitude of the measured - true offset anywhere on the grid
CALIBRATION_GRID = 9


def free_viewing(rng: np.random.Generator, frames: int, size: SizeSpec) -> tuple[np.ndarray, np.ndarray]:
    """True gaze float32 (F, 2) and saccade-onset frames (K,) of one free-viewing trial."""
    rate, reach = size.rate_hz, 0.9 * size.gaze_range_deg
    drift = DRIFT_DEG_PER_SQRT_S / np.sqrt(rate)
    saccade = max(1, round(SACCADE_S * rate))
    ramp = (1 - np.cos(np.pi * np.arange(1, saccade + 1) / (saccade + 1))) / 2
    gaze, onsets = np.empty((frames, 2)), []
    position, t = rng.uniform(-reach, reach, size=2), 0
    while t < frames:
        duration = max(
            3, round(rng.gamma(FIXATION_GAMMA_SHAPE, FIXATION_MEAN_S / FIXATION_GAMMA_SHAPE) * rate)
        )
        n = min(duration, frames - t)
        path = position + np.cumsum(rng.normal(0, drift, size=(n, 2)), axis=0)
        gaze[t : t + n] = np.clip(path, -size.gaze_range_deg, size.gaze_range_deg)
        t, position = t + n, gaze[t + n - 1]
        if t >= frames:
            break
        target = rng.uniform(-reach, reach, size=2)
        n = min(saccade, frames - t)
        onsets.append(t)
        gaze[t : t + n] = position + (target - position) * ramp[:n, None]
        t, position = t + n, target
    return gaze.astype(np.float32), np.asarray(onsets, dtype=np.int64)


def fixation(rng: np.random.Generator, frames: int, size: SizeSpec) -> np.ndarray:
    """True gaze float32 (F, 2) of a fixation trial: a fixation point plus slow mean-reverting drift."""
    rate = size.rate_hz
    centre = np.clip(rng.normal(0, 0.05, size=2), -0.15, 0.15)
    pull, drift = 1 / (0.5 * rate), DRIFT_DEG_PER_SQRT_S / np.sqrt(rate)
    steps = rng.normal(0, drift, size=(frames, 2))
    gaze, position = np.empty((frames, 2)), centre.copy()
    for t in range(frames):
        position = position + pull * (centre - position) + steps[t]
        gaze[t] = position
    return gaze.astype(np.float32)


def blinks(rng: np.random.Generator, frames: int, size: SizeSpec) -> np.ndarray:
    """bool (F,): frames with the eyes closed (the neurons see no image; samples are invalid)."""
    closed = np.zeros(frames, dtype=bool)
    for _ in range(rng.poisson(BLINK_RATE_HZ * frames / size.rate_hz)):
        length = round(rng.uniform(*BLINK_S) * size.rate_hz)
        start = int(rng.integers(0, max(1, frames - length)))
        closed[start : start + length] = True
    return closed


@dataclass(frozen=True)
class CalibrationField:
    """measured - true gaze offset (deg) on a grid of true gaze positions, bilinearly interpolated."""

    grid_x: np.ndarray  # (Gx,) deg
    grid_y: np.ndarray  # (Gy,) deg
    field: np.ndarray  # (Gy, Gx, 2) deg

    def __call__(self, gaze: np.ndarray) -> np.ndarray:
        u = self._grid_position(gaze[:, 0], self.grid_x)
        v = self._grid_position(gaze[:, 1], self.grid_y)
        i, j = (
            np.minimum(v.astype(int), len(self.grid_y) - 2),
            np.minimum(u.astype(int), len(self.grid_x) - 2),
        )
        fv, fu = (v - i)[:, None], (u - j)[:, None]
        f = self.field
        top = (1 - fu) * f[i, j] + fu * f[i, j + 1]
        bottom = (1 - fu) * f[i + 1, j] + fu * f[i + 1, j + 1]
        return (1 - fv) * top + fv * bottom

    @staticmethod
    def _grid_position(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
        return np.clip((values - grid[0]) / (grid[1] - grid[0]), 0, len(grid) - 1)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"grid_x": self.grid_x, "grid_y": self.grid_y, "field": self.field}


def calibration_field(rng: np.random.Generator, size: SizeSpec, enabled: bool) -> CalibrationField:
    """A smooth offset field: a constant offset plus a few slow plane waves, magnitudes in 0.1-0.5 deg.

    Zero everywhere when `enabled` is False (perfect gaze).
    """
    extent = size.gaze_range_deg + 0.2
    grid = np.linspace(-extent, extent, CALIBRATION_GRID)
    x, y = np.meshgrid(grid, grid)
    field = np.zeros((CALIBRATION_GRID, CALIBRATION_GRID, 2))
    if enabled:
        angle = rng.uniform(0, 2 * np.pi)
        field += rng.uniform(0.15, 0.35) * np.array([np.cos(angle), np.sin(angle)])
        for _ in range(3):
            fx, fy = rng.uniform(-0.3, 0.3, size=2)
            phase = rng.uniform(0, 2 * np.pi, size=2)
            wave = 2 * np.pi * (fx * x + fy * y)
            field += 0.06 * np.stack([np.sin(wave + phase[0]), np.sin(wave + phase[1])], axis=-1)
        magnitude = np.linalg.norm(field, axis=-1, keepdims=True)
        field *= np.clip(magnitude, *CALIBRATION_RANGE_DEG) / magnitude
    return CalibrationField(grid.astype(np.float32), grid.astype(np.float32), field.astype(np.float32))


def measure(true: np.ndarray, field: CalibrationField, rng: np.random.Generator, noisy: bool) -> np.ndarray:
    """Measured gaze float32 (F, 2): true + calibration offset + tracker noise (exactly true when not noisy)."""
    if not noisy:
        return true.copy()
    offset = field(true.astype(np.float64)) + rng.normal(0, TRACKER_NOISE_DEG, size=true.shape)
    return (true + offset).astype(np.float32)
