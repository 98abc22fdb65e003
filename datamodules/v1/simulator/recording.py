"""The trial loop of one session: each trial's world, gaze and blinks, the stored and the seen frames.

The stored stimulus is the world cropped at the measured gaze; the neurons see it cropped at the
true gaze (the same frames when gaze is perfect). Their linear drive and saccade gain are computed
trial by trial, so the temporal filters start from grey at every trial start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from datamodules.v1.simulator.gaze import (
    CALIBRATION_RANGE_DEG,
    CalibrationField,
    blinks,
    calibration_field,
    fixation,
    free_viewing,
    measure,
)
from datamodules.v1.simulator.plan import SessionPlan, Trial
from datamodules.v1.simulator.responses import FilterBank, saccade_gain, trial_drive
from datamodules.v1.simulator.stimuli import GENERATORS, Geometry, World, crop, to_contrast, to_pixels
from datamodules.v1.simulator.units import Units


def geometry_of(plan: SessionPlan) -> Geometry:
    """Canvas margin: the gaze range plus, with calibration error, the largest offset and noise."""
    margin = CALIBRATION_RANGE_DEG[1] + 0.1 if plan.tier.calibration_error else 0.05
    return Geometry.of(plan.size, margin)


def trial_world(plan: SessionPlan, trial: Trial) -> World:
    """The screen content of one trial (the same for every repeat of a fixrsvp sequence)."""
    rng = plan.rng("sequence", trial.repeat) if trial.type == "fixrsvp" else plan.rng("stimulus", trial.id)
    return GENERATORS[trial.type](rng, trial.frames, geometry_of(plan))


def trial_gaze(plan: SessionPlan, trial: Trial) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True gaze (F, 2), saccade onsets (within the trial) and blink frames (F,) of one trial."""
    size, frames = plan.size, trial.frames
    if trial.type == "fixrsvp":
        gaze = fixation(plan.rng("fixation", trial.repeat), frames, size)
        return gaze, np.zeros(0, dtype=np.int64), np.zeros(frames, dtype=bool)
    gaze, onsets = free_viewing(plan.rng("gaze", trial.id), frames, size)
    closed = (
        blinks(plan.rng("blinks", trial.id), frames, size) if plan.tier.blinks else np.zeros(frames, bool)
    )
    return gaze, onsets, closed


def session_calibration(plan: SessionPlan) -> CalibrationField:
    return calibration_field(plan.rng("calibration"), plan.size, plan.tier.calibration_error)


@dataclass
class Recording:
    """What the trial loop produces: stored frames, gaze, blinks and per-unit signals on the timeline."""

    stored: np.ndarray  # uint8 (T, H, W) cropped at the measured gaze
    true_gaze: np.ndarray
    eyepos: np.ndarray
    closed: np.ndarray  # blinks
    signals: dict[str, np.ndarray]  # trial_drive outputs, (T, N) each
    saccade: np.ndarray  # (T, N) saccade-locked gain
    onsets: np.ndarray  # saccade onsets on the timeline


def record(
    plan: SessionPlan,
    units: Units,
    bank: FilterBank | None = None,
    seen_offset: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Recording:
    """Run every trial: world, gaze, stored and seen frames, linear drive and saccade gain.

    For what-if analyses only (experiments/v1_information_budget.py): `bank` replaces the units' own
    filters, and `seen_offset` maps a trial's true gaze (F, 2) to an offset (deg) at which the drive's
    frames are cropped instead, e.g. the error a shifter leaves. The stored frames never change.
    """
    tier, size, frames, count = plan.tier, plan.size, plan.num_frames, plan.num_units
    bank = FilterBank.of(units, size) if bank is None else bank
    geometry, field = geometry_of(plan), session_calibration(plan)
    out = Recording(
        stored=np.empty((frames, size.frame_px, size.frame_px), dtype=np.uint8),
        true_gaze=np.empty((frames, 2), np.float32),
        eyepos=np.empty((frames, 2), np.float32),
        closed=np.zeros(frames, dtype=bool),
        signals={name: np.empty((frames, count), np.float32) for name in ("center", "surround", "pool")},
        saccade=np.empty((frames, count), np.float32),
        onsets=np.zeros(0, dtype=np.int64),
    )
    onsets = []
    for trial in plan.trials:
        rows = slice(trial.start, trial.stop)
        world = trial_world(plan, trial)
        gaze, trial_onsets, out.closed[rows] = trial_gaze(plan, trial)
        out.true_gaze[rows] = gaze
        out.eyepos[rows] = measure(gaze, field, plan.rng("tracker", trial.id), tier.calibration_error)
        out.stored[rows] = to_pixels(crop(world, out.eyepos[rows], geometry))
        # The neurons see the world at the true gaze (identical to the stored frames with perfect gaze).
        if seen_offset is not None:
            seen = to_pixels(crop(world, gaze + seen_offset(gaze), geometry))
        else:
            seen = out.stored[rows] if not tier.calibration_error else to_pixels(crop(world, gaze, geometry))
        contrast = to_contrast(seen).reshape(trial.frames, -1)
        contrast[out.closed[rows]] = 0.0  # eyes closed: no image
        for name, value in trial_drive(contrast, bank).items():
            out.signals[name][rows] = value
        out.saccade[rows] = saccade_gain(trial_onsets, trial.frames, units, size)
        onsets.append(trial.start + trial_onsets)
    out.onsets = np.concatenate(onsets).astype(np.int64)
    return out
