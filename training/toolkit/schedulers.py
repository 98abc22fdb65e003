"""Closed-form schedules: linear-warmup + cosine LR, and scalar schedules for annealing.

Every value is a pure function of the step (or epoch) counter, so a resumed run (whose step counter is
restored from the checkpoint) reproduces the uninterrupted sequence exactly.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Literal

import torch
from torch.optim.lr_scheduler import LambdaLR

ScheduleKind = Literal["linear", "cosine", "exponential", "constant", "geometric"]
SCALAR_SCHEDULE_KINDS: tuple[str, ...] = ("linear", "cosine", "exponential", "constant", "geometric")


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


def check_scalar_schedule(
    kind: str,
    start: float,
    end: float,
    total_steps: int | None = None,
    decay: float | None = None,
    where: str = "scalar_schedule",
    key_prefix: str = "",
) -> None:
    """Raise ValueError if the arguments do not define a schedule; messages name `<key_prefix><argument>`."""
    if kind not in SCALAR_SCHEDULE_KINDS:
        raise ValueError(f"{where}: {key_prefix}kind must be one of {SCALAR_SCHEDULE_KINDS}, got {kind!r}.")
    if kind in ("exponential", "geometric") and (start == 0 or end == 0 or (start > 0) != (end > 0)):
        raise ValueError(
            f"{where}: {kind!r} needs start and end non-zero with the same sign, got {start}, {end} "
            f"({key_prefix}start, {key_prefix}end)."
        )
    if kind == "geometric":
        if total_steps is not None:
            raise ValueError(
                f"{where}: {key_prefix}total_steps is not used by kind 'geometric' (decay sets the pace); "
                f"leave it null, got {total_steps!r}."
            )
        if decay is None or decay <= 0:
            raise ValueError(f"{where}: kind 'geometric' needs {key_prefix}decay > 0, got {decay!r}.")
        shrinking, growing = abs(end) < abs(start), abs(end) > abs(start)
        if (shrinking and decay >= 1) or (growing and decay <= 1):
            wanted = "in (0, 1)" if shrinking else "> 1"
            raise ValueError(
                f"{where}: {key_prefix}decay={decay} does not move start={start} towards end={end}; "
                f"use a decay {wanted}."
            )
        return
    if decay is not None:
        raise ValueError(
            f"{where}: {key_prefix}decay is only used by kind 'geometric' (kind is {kind!r}); leave it null."
        )
    if total_steps is None and kind != "constant":
        raise ValueError(
            f"{where}: kind {kind!r} needs {key_prefix}total_steps (the steps or epochs from start to end)."
        )
    if total_steps is not None and total_steps < 0:
        raise ValueError(f"{where}: {key_prefix}total_steps must be >= 0, got {total_steps}.")


def scalar_schedule(
    kind: ScheduleKind,
    start: float,
    end: float,
    step: int,
    total_steps: int | None = None,
    *,
    decay: float | None = None,
) -> float:
    """Value of a scalar going from `start` (step 0) to `end` (step `total_steps`), clamped after.

    `linear`, `cosine` (half-cosine ease) and `exponential` (start and end non-zero with the same sign)
    are monotone between the two; `constant` returns `start` throughout. `geometric` multiplies by
    `decay` once per step until it reaches `end` (no `total_steps`): the Gumbel-temperature recipe
    `value = max(end, value * decay)`, reproduced bit for bit.
    """
    check_scalar_schedule(kind, start, end, total_steps, decay)
    if kind == "constant":
        return float(start)
    if kind == "geometric":
        assert decay is not None  # checked above
        return _geometric(float(start), float(end), float(decay), max(step, 0))
    assert total_steps is not None  # checked above
    if step >= total_steps:
        return float(end)
    t = max(step, 0) / total_steps
    if kind == "linear":
        return start + (end - start) * t
    if kind == "cosine":
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))
    return start * (end / start) ** t


@functools.lru_cache(maxsize=16)
def _geometric_prefix(start: float, end: float, decay: float) -> list[float]:
    """The sequence's values so far (grown by `_geometric`); memoised so each step costs O(1)."""
    return [start]


def _geometric(start: float, end: float, decay: float, step: int) -> float:
    # Repeated multiplication, not start * decay**step: the two differ in the last bits, and a resumed
    # run must continue the very sequence the recipe's loop produces. The list stops growing at `end`.
    values = _geometric_prefix(start, end, decay)
    while len(values) <= step and values[-1] != end:
        following = values[-1] * decay
        values.append(end if (following - end) * (start - end) <= 0 else following)  # never past end
    return values[min(step, len(values) - 1)]
