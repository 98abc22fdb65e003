"""Validity masks (dfs): which (frame, unit) entries a model may be scored on.

A frame is invalid for every unit when its lag window (the `lags` frames ending at it) reaches before
its trial's first frame or contains a blink; a unit is invalid during its sorting-dropout blocks
(the spike sorter lost it, so its recorded counts there are zero).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from datamodules.v1.simulator.plan import Trial

DROPOUT_UNIT_FRACTION = 0.25  # share of units with one dropout block (tiers with dropout)
DROPOUT_BLOCK_FRACTION = (0.05, 0.2)  # block length as a share of the session


def dropout_blocks(
    rng: np.random.Generator, frames: int, units: int, enabled: bool
) -> list[tuple[int, int, int]]:
    """(unit index, start, stop) of each sorting-dropout block; none when not `enabled`."""
    if not enabled:
        return []
    chosen = np.sort(rng.choice(units, size=max(1, round(DROPOUT_UNIT_FRACTION * units)), replace=False))
    blocks = []
    for unit in chosen:
        length = round(rng.uniform(*DROPOUT_BLOCK_FRACTION) * frames)
        start = int(rng.integers(0, frames - length + 1))
        blocks.append((int(unit), start, start + length))
    return blocks


def validity(
    frames: int,
    units: int,
    trials: Sequence[Trial],
    lags: int,
    blinks: np.ndarray,
    dropout: Sequence[tuple[int, int, int]],
) -> np.ndarray:
    """uint8 (T, N): 1 where the entry is valid."""
    valid_frame = np.ones(frames, dtype=bool)
    for trial in trials:
        valid_frame[trial.start : min(trial.stop, trial.start + lags - 1)] = False
    blink_count = np.concatenate([[0], np.cumsum(blinks)])
    recent_blinks = blink_count[1:] - blink_count[np.maximum(np.arange(frames) + 1 - lags, 0)]
    valid_frame &= recent_blinks == 0
    dfs = np.repeat(valid_frame[:, None], units, axis=1)
    for unit, start, stop in dropout:
        dfs[start:stop, unit] = False
    return dfs.astype(np.uint8)
