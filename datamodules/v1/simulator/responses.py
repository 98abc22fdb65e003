"""From the image the neurons see to expected spike counts and spikes.

Per trial (`trial_drive`): linear filtering (spatial filter bank as one matrix product over flattened
pixels, then causal temporal filtering that starts from grey at the trial start) and the cell type's
nonlinearity. Per session (`stimulus_drive`): surround suppression, contrast normalisation, the
saturating output nonlinearity and the baseline, scaled so each unit's mean is 1. Then
multiplicative saccade-locked and hidden shared gains, scaling to the unit's mean rate, and
Poisson spikes. Saccade gains lie within the lag window, so they are predictable from the inputs;
the hidden gain is not (`achievable` replaces it by its mean).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from datamodules.v1.simulator.tiers import SizeSpec
from datamodules.v1.simulator.units import (
    SURROUND_SCALE,
    TemporalKernels,
    Units,
    gabor_pair,
    pool_weights,
    temporal_kernels,
)

SACCADE_DIP_MS, SACCADE_REBOUND_MS, SACCADE_WIDTH_MS = 50.0, 105.0, 20.0
HIDDEN_TIMESCALE_S = 20.0
EPS = 1e-12


@dataclass(frozen=True)
class FilterBank:
    spatial: np.ndarray  # float32 (P, 4N): even, odd, surround even, surround odd
    pool: np.ndarray  # float32 (P, N), applied to squared contrast
    kernels: TemporalKernels
    units: Units

    @classmethod
    def of(cls, units: Units, size: SizeSpec) -> FilterBank:
        centre = gabor_pair(units, size)
        surround = gabor_pair(units, size, scale=SURROUND_SCALE, round_envelope=True)
        spatial = np.concatenate([centre, surround], axis=1)
        return cls(spatial, pool_weights(units, size), temporal_kernels(units, size), units)


def temporal_filter(signal: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Causal per-column filtering within one trial: out[t] = sum_l kernels[l] * signal[t - l] (grey before)."""
    out = np.zeros_like(signal)
    for lag in range(min(len(kernels), len(signal))):
        out[lag:] += kernels[lag] * signal[: len(signal) - lag]
    return out


def trial_drive(contrast: np.ndarray, bank: FilterBank) -> dict[str, np.ndarray]:
    """Per-trial (F, N) signals from the seen contrast (F, P): `center` energy, `surround` energy, `pool`."""
    units, kernels = bank.units, bank.kernels
    n = len(units)
    filtered = temporal_filter(contrast @ bank.spatial, np.tile(kernels.biphasic, 4))
    even, odd, surround_even, surround_odd = np.split(filtered, 4, axis=1)
    quadrature = temporal_filter(contrast @ bank.spatial[:, : 2 * n], np.tile(kernels.quadrature, 2))
    even_q, odd_q = np.split(quadrature, 2, axis=1)
    d = units.direction
    motion_energy = (even + d * odd_q) ** 2 + (odd - d * even_q) ** 2
    center = np.where(units.cell_type == "simple", np.maximum(even, 0) ** 2, even**2 + odd**2)
    center = np.where(units.is_subtype("direction_selective"), motion_energy, center)
    pool = np.zeros_like(center)
    if units.normalisation_weight.any():
        pool = temporal_filter((contrast**2) @ bank.pool, kernels.lowpass)
    return {"center": center, "surround": surround_even**2 + surround_odd**2, "pool": pool}


def stimulus_drive(center: np.ndarray, surround: np.ndarray, pool: np.ndarray, units: Units) -> np.ndarray:
    """(T, N) stimulus-driven rate shape with mean 1 per unit: b + (1 - b) * saturating(normalised drive)."""

    def relative(x: np.ndarray) -> np.ndarray:
        return x / (x.mean(0) + EPS)

    drive = relative(center)
    drive = drive / (1 + units.surround_weight * relative(surround))
    drive = relative(drive / (1 + units.normalisation_weight * relative(pool)))
    drive = (1 - units.visual_weight) + units.visual_weight * drive
    saturated = relative(drive / (1 + drive / units.saturation))
    return units.baseline_fraction + (1 - units.baseline_fraction) * saturated


def saccade_gain(onsets: np.ndarray, frames: int, units: Units, size: SizeSpec) -> np.ndarray:
    """(F, N) multiplicative gain of one trial: a dip ~50 ms and a rebound ~105 ms after each saccade onset."""
    delay_ms = (np.arange(size.lags) + 0.5) * 1000.0 / size.rate_hz
    dip = np.exp(-(((delay_ms - SACCADE_DIP_MS) / SACCADE_WIDTH_MS) ** 2))
    rebound = np.exp(-(((delay_ms - SACCADE_REBOUND_MS) / SACCADE_WIDTH_MS) ** 2))
    impulses = np.zeros((frames, 2))
    impulses[onsets] = 1.0
    locked = temporal_filter(impulses, np.stack([dip, rebound], axis=1))
    gain = 1 - locked[:, :1] * units.saccade_suppression + locked[:, 1:] * units.saccade_rebound
    return np.maximum(gain, 0.05)


def hidden_state(rng: np.random.Generator, frames: int, rate_hz: float) -> np.ndarray:
    """(T,) stationary unit-variance Ornstein-Uhlenbeck process with a HIDDEN_TIMESCALE_S time constant."""
    decay = np.exp(-1.0 / (HIDDEN_TIMESCALE_S * rate_hz))
    noise = rng.normal(size=frames)
    start = rng.normal() * decay
    state, _ = lfilter([np.sqrt(1 - decay**2)], [1, -decay], noise, zi=[start])
    return state


def hidden_gain(state: np.ndarray, units: Units) -> np.ndarray:
    """(T, N) log-normal shared gain exp(a z - a^2/2), mean ~1 per unit (all ones when loadings are 0)."""
    loading = units.hidden_loading
    return np.exp(state[:, None] * loading - loading**2 / 2)


def running_speed(rng: np.random.Generator, state: np.ndarray) -> np.ndarray:
    """float32 (T, 1) noisy behavioural proxy of the hidden state (a 'running speed', >= 0)."""
    noisy = state + rng.normal(0, 0.5, size=state.shape)
    return (10.0 * np.logaddexp(0, noisy))[:, None].astype(np.float32)


def expected_counts(
    drive: np.ndarray, saccade: np.ndarray, hidden: np.ndarray, units: Units, rate_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """float32 (T, N) true lambda (spikes per bin, mean = mean rate / rate) and the achievable lambda.

    The achievable lambda replaces the hidden gain by its per-unit mean (everything else identical).
    """
    visible = drive * saccade
    scale = units.mean_rate_hz / rate_hz / (visible * hidden).mean(0)
    return (visible * hidden * scale).astype(np.float32), (visible * hidden.mean(0) * scale).astype(
        np.float32
    )


def poisson_spikes(rng: np.random.Generator, rates: np.ndarray) -> np.ndarray:
    """Spike counts (T, N): uint8, or uint16 when any count exceeds 255."""
    counts = rng.poisson(rates)
    return counts.astype(np.uint8 if counts.max(initial=0) <= 255 else np.uint16)
