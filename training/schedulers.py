"""Closed-form schedules: linear-warmup + cosine LR, and scalar schedules for annealing.

Every value is a pure function of the step counter, so a resumed run (whose step counter is
restored from the checkpoint) reproduces the uninterrupted sequence exactly.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Literal

import torch
from torch.optim.lr_scheduler import LambdaLR

ScheduleKind = Literal["linear", "cosine", "exponential", "constant"]
SCALAR_SCHEDULE_KINDS: tuple[str, ...] = ("linear", "cosine", "exponential", "constant")


def _check_warmup_cosine_args(warmup_steps: int, total_steps: int, min_lr_ratio: float) -> None:
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(
            f"warmup_cosine: total_steps must be a positive integer (optimizer steps), got {total_steps!r}. "
            "Leave it null in the scheduler config to have it filled from trainer.estimated_stepping_batches."
        )
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ValueError(f"warmup_cosine: warmup_steps must be an integer >= 0, got {warmup_steps!r}.")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"warmup_cosine: min_lr_ratio must be in [0, 1], got {min_lr_ratio!r}.")


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> float:
    """LR multiplier after `step` optimizer steps: linear warmup, then cosine decay to `min_lr_ratio`.

    Warmup is `(step + 1) / (warmup_steps + 1)` for `step < warmup_steps` (> 0 at step 0, so the first
    step trains; strictly increasing); exactly 1.0 at `step == warmup_steps`; cosine down to exactly
    `min_lr_ratio` at `step == total_steps`, and held there after (if the two coincide, the end wins).
    """
    if step < 0:
        raise ValueError(f"warmup_cosine_factor: step must be >= 0, got {step}.")
    if step >= total_steps:
        return float(min_lr_ratio)
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class LinearWarmupCosineAnnealingLR(LambdaLR):
    """The seed's schedule: `warmup_cosine_factor` as a `LambdaLR`; step it once per optimizer step."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int,
        total_steps: int,
        min_lr_ratio: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        _check_warmup_cosine_args(warmup_steps, total_steps, min_lr_ratio)
        if warmup_steps > total_steps:
            # Short debug runs (fast_dev_run, limit_train_batches) must not fail on a recipe's warmup.
            warnings.warn(
                f"warmup_cosine: warmup_steps ({warmup_steps}) > total_steps ({total_steps}); warming up over "
                f"all {total_steps} steps instead. Lower warmup_steps if this is a real run.",
                stacklevel=2,
            )
            warmup_steps = total_steps
        factor = functools.partial(
            warmup_cosine_factor,
            warmup_steps=warmup_steps,
            total_steps=total_steps,
            min_lr_ratio=min_lr_ratio,
        )
        super().__init__(optimizer, lr_lambda=factor, last_epoch=last_epoch)


def scalar_schedule(kind: ScheduleKind, start: float, end: float, step: int, total_steps: int) -> float:
    """Value of a scalar going from `start` (step 0) to `end` (step `total_steps`), clamped after.

    `linear`, `cosine` (half-cosine ease) and `exponential` (geometric; start and end non-zero with
    the same sign) are monotone between the two; `constant` returns `start` throughout.
    """
    if kind not in SCALAR_SCHEDULE_KINDS:
        raise ValueError(f"scalar_schedule: kind must be one of {SCALAR_SCHEDULE_KINDS}, got {kind!r}.")
    if total_steps < 0:
        raise ValueError(f"scalar_schedule: total_steps must be >= 0, got {total_steps}.")
    if kind == "exponential" and (start == 0 or end == 0 or (start > 0) != (end > 0)):
        raise ValueError(
            f"scalar_schedule: 'exponential' needs start and end non-zero with the same sign, got {start}, {end}."
        )
    if kind == "constant":
        return float(start)
    if step >= total_steps:
        return float(end)
    t = max(step, 0) / total_steps
    if kind == "linear":
        return start + (end - start) * t
    if kind == "cosine":
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))
    return start * (end / start) ** t
