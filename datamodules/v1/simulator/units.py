"""Unit parameters of a session and the linear filters they imply.

Receptive fields are Gabors (size, aspect, SF ~3 cyc/deg, orientation, phase) whose centres cluster
around a per-session point (near a per-subject point). Cell types by quota of the tier's mix:
simple (LN, half-squaring), complex (energy of a quadrature pair) and other: surround-suppressed,
direction-selective (space-time quadrature energy) or nearly non-visual. Temporal filters are
biphasic with a 35-60 ms latency, sampled as `lags` taps so the whole filter fits the lag window.
Parameters of features a tier switches off are zero, so the response code needs no tier flags.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from datamodules.v1.simulator.plan import SessionPlan
from datamodules.v1.simulator.tiers import SizeSpec

OTHER_SUBTYPES = ("surround_suppressed", "direction_selective", "non_visual")
LATENCY_RANGE_MS = (35.0, 60.0)  # each unit's temporal filter peaks at a latency drawn uniformly here
SUBTYPE_OF = {"simple": "linear_nonlinear", "complex": "energy"}
MEAN_RATE_MEDIAN_HZ, MEAN_RATE_LOG_SD, MEAN_RATE_RANGE_HZ = 7.0, 0.5, (1.5, 40.0)
SF_MEDIAN_CPD, SF_LOG_SD, SF_RANGE_CPD = 3.0, 0.25, (1.5, 5.0)
SURROUND_SCALE, POOL_SCALE = 2.5, 2.0  # surround / normalisation-pool sigma in units of the RF sigma
LOBE_WIDTH_MS, LOBE_DELAY_MS, NEGATIVE_LOBE = 12.0, 32.0, 0.6


@dataclass
class Units:
    """Per-unit parameters, each an array over the session's units (index = position in unit_ids)."""

    ids: np.ndarray
    cell_type: np.ndarray
    subtype: np.ndarray
    center_deg: np.ndarray  # (N, 2) x right, y up, relative to the frame centre (retinal)
    sigma_deg: np.ndarray  # envelope sigma across the bars
    aspect: np.ndarray  # sigma along the bars / sigma across
    sf_cpd: np.ndarray
    ori_deg: np.ndarray  # direction of the carrier (0 = vertical bars)
    phase_deg: np.ndarray
    latency_ms: np.ndarray
    mean_rate_hz: np.ndarray
    baseline_fraction: np.ndarray  # share of the mean rate that does not depend on the stimulus
    saturation: np.ndarray  # output nonlinearity y = u / (1 + u / saturation), u = drive / mean drive
    surround_weight: np.ndarray  # surround-suppressed units
    direction: np.ndarray  # direction-selective units: +1 / -1 (0 otherwise)
    visual_weight: np.ndarray  # 1, or small for nearly non-visual units
    normalisation_weight: np.ndarray  # contrast normalisation (0 when the tier has none)
    saccade_suppression: np.ndarray
    saccade_rebound: np.ndarray
    hidden_loading: np.ndarray  # log-gain loading on the hidden shared state

    def __len__(self) -> int:
        return len(self.ids)

    def is_subtype(self, subtype: str) -> np.ndarray:
        return self.subtype == subtype

    def records(self) -> list[dict]:
        """JSON-ready list of per-unit dicts (truth/units.json); `dropout_blocks` is filled by the simulator."""
        out = []
        for i in range(len(self)):
            record: dict = {}
            for field in fields(self):
                value = getattr(self, field.name)[i]
                key = "id" if field.name == "ids" else field.name
                record[key] = value.tolist() if isinstance(value, np.ndarray) else value.item()
            out.append(record | {"dropout_blocks": []})
        return out


def draw_units(plan: SessionPlan) -> Units:
    """The units of a session, deterministic from the plan (one generator for the session, one per subject)."""
    rng, subject_rng = plan.rng("units"), plan.subject_rng("subject")
    tier, size, count = plan.tier, plan.size, plan.num_units
    subject_centre = subject_rng.uniform(-0.1, 0.1, size=2)
    subject_sf = subject_rng.uniform(0.85, 1.15)
    cell_type, subtype = _types(rng, count, tier.cell_mix)
    half_field = size.frame_px / size.pixels_per_degree / 2
    cluster = subject_centre + rng.normal(0, 0.05, size=2)
    center = np.clip(
        cluster + rng.normal(0, size.rf_cluster_deg, size=(count, 2)), -0.35 * half_field, 0.35 * half_field
    )
    sf = np.clip(rng.lognormal(np.log(SF_MEDIAN_CPD * subject_sf), SF_LOG_SD, count), *SF_RANGE_CPD)
    sigma = rng.uniform(0.35, 0.55, count) / sf
    mean_rate = np.clip(
        rng.lognormal(np.log(MEAN_RATE_MEDIAN_HZ), MEAN_RATE_LOG_SD, count), *MEAN_RATE_RANGE_HZ
    )
    draws = {
        "aspect": rng.uniform(1.0, 2.0, count),
        "ori_deg": rng.uniform(0, 180, count),
        "phase_deg": rng.uniform(0, 360, count),
        "latency_ms": rng.uniform(*LATENCY_RANGE_MS, count),
        "baseline_fraction": rng.uniform(0.05, 0.3, count),
        "saturation": rng.uniform(3, 8, count),
        "surround_weight": rng.uniform(1, 3, count),
        "direction": rng.choice([-1.0, 1.0], count),
        "visual_weight": rng.uniform(0.02, 0.08, count),
        "normalisation_weight": rng.uniform(0.5, 2.0, count),
        "saccade_suppression": rng.uniform(0.3, 0.7, count),
        "saccade_rebound": rng.uniform(0.1, 0.4, count),
        "hidden_loading": rng.uniform(0.1, 0.4, count),
    }
    draws["surround_weight"] *= subtype == "surround_suppressed"
    draws["direction"] *= subtype == "direction_selective"
    draws["visual_weight"] = np.where(subtype == "non_visual", draws["visual_weight"], 1.0)
    draws["normalisation_weight"] *= tier.normalisation * (subtype != "non_visual")
    draws["saccade_suppression"] *= tier.saccade_gain
    draws["saccade_rebound"] *= tier.saccade_gain
    draws["hidden_loading"] *= tier.hidden_gain
    return Units(
        ids=np.asarray(plan.unit_ids),
        cell_type=cell_type,
        subtype=subtype,
        center_deg=center,
        sigma_deg=sigma,
        sf_cpd=sf,
        mean_rate_hz=mean_rate,
        **draws,
    )


def _types(rng: np.random.Generator, count: int, mix: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Cell types by quota (rounded fractions, complex takes the remainder), shuffled; subtypes of 'other' cycle."""
    simple, other = round(count * mix[0]), round(count * mix[2])
    types = ["simple"] * simple + ["complex"] * (count - simple - other) + ["other"] * other
    subtypes = [SUBTYPE_OF.get(t, "") for t in types]
    for k in range(other):
        subtypes[simple + (count - simple - other) + k] = OTHER_SUBTYPES[k % len(OTHER_SUBTYPES)]
    order = rng.permutation(count)
    return np.asarray(types)[order], np.asarray(subtypes)[order]


def frame_coords(size: SizeSpec) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) in degrees of every stored-frame pixel, flattened to (P,), relative to the frame centre."""
    axis = (np.arange(size.frame_px) - (size.frame_px - 1) / 2) / size.pixels_per_degree
    x, y = np.meshgrid(axis, -axis)
    return x.ravel(), y.ravel()


def gabor_pair(units: Units, size: SizeSpec, scale: float = 1.0, round_envelope: bool = False) -> np.ndarray:
    """float32 (P, 2N): zero-mean, unit-norm even then odd Gabors (envelope sigma x `scale`)."""
    x, y = frame_coords(size)
    dx, dy = x[:, None] - units.center_deg[:, 0], y[:, None] - units.center_deg[:, 1]
    ori, phase = np.deg2rad(units.ori_deg), np.deg2rad(units.phase_deg)
    across = dx * np.cos(ori) + dy * np.sin(ori)
    along = -dx * np.sin(ori) + dy * np.cos(ori)
    sigma = units.sigma_deg * scale
    aspect = 1.0 if round_envelope else units.aspect
    envelope = np.exp(-(across**2) / (2 * sigma**2) - along**2 / (2 * (sigma * aspect) ** 2))
    carrier = 2 * np.pi * units.sf_cpd * across + phase
    pair = []
    for wave in (np.cos(carrier), np.sin(carrier)):
        gabor = envelope * wave
        gabor -= envelope * gabor.sum(0) / envelope.sum(0)  # no response to uniform luminance
        pair.append(gabor / np.linalg.norm(gabor, axis=0))
    return np.concatenate(pair, axis=1).astype(np.float32)


def pool_weights(units: Units, size: SizeSpec) -> np.ndarray:
    """float32 (P, N): Gaussian normalisation pools (sum 1) applied to squared contrast."""
    x, y = frame_coords(size)
    sigma = POOL_SCALE * units.sigma_deg
    dist2 = (x[:, None] - units.center_deg[:, 0]) ** 2 + (y[:, None] - units.center_deg[:, 1]) ** 2
    weights = np.exp(-dist2 / (2 * sigma**2))
    return (weights / weights.sum(0)).astype(np.float32)


@dataclass(frozen=True)
class TemporalKernels:
    """(L, N) taps; tap l weighs the frame l bins before the response bin (tap 0 = the same bin)."""

    biphasic: np.ndarray
    quadrature: np.ndarray  # minus the time derivative of `biphasic`: its temporal quadrature pair
    lowpass: np.ndarray  # positive lobe, sum 1 (normalisation pool)


def temporal_kernels(units: Units, size: SizeSpec) -> TemporalKernels:
    """Biphasic filters (positive lobe at the latency, negative ~32 ms later), averaged within each bin."""
    step_ms, bin_ms = 0.25, 1000.0 / size.rate_hz
    t = np.arange(-300.0, 500.0, step_ms)[:, None]
    latency = units.latency_ms[None, :]
    lobe = np.exp(-(((t - latency) / LOBE_WIDTH_MS) ** 2))
    late = np.exp(-(((t - latency - LOBE_DELAY_MS) / (1.3 * LOBE_WIDTH_MS)) ** 2))
    fine = lobe - NEGATIVE_LOBE * late
    quadrature = -np.gradient(fine, step_ms, axis=0)  # ~90 deg phase-shifted, and as causal as `fine`
    taps = np.floor(t[:, 0] / bin_ms).astype(int)
    inside = (taps >= 0) & (taps < size.lags)

    def binned(signal: np.ndarray) -> np.ndarray:
        out = np.zeros((size.lags, signal.shape[1]))
        np.add.at(out, taps[inside], signal[inside])
        return out

    biphasic, quad, positive = binned(fine), binned(quadrature), binned(np.maximum(fine, 0))
    return TemporalKernels(
        (biphasic / np.linalg.norm(biphasic, axis=0)).astype(np.float32),
        (quad / np.linalg.norm(quad, axis=0)).astype(np.float32),
        (positive / positive.sum(0)).astype(np.float32),
    )
