"""`BalanceController`: keep the discriminator's accuracy in a band (seed 001's debugging guide, automated).

The guide says: D accuracy < 0.60 -> train D more (more D steps); D accuracy > 0.95 -> train D less
(a longer D interval). Two ways to act on it:
- `augment`: adapt the differentiable-augmentation probability after every D step, on the device
  (StyleGAN2-ADA's idea): too accurate -> augment more (D overfits), too weak -> augment less. No host reads.
- `interval`: once per epoch, from the epoch's mean D accuracy (one host read per epoch): too accurate ->
  `d_train_interval` + 1; too weak -> `d_train_interval` - 1, and once it is 1, `d_steps` + 1 (up to
  `max_d_steps`); back inside the band, nothing changes.
- `both`: the two together; the D schedule takes over where augmentation alone cannot hold D back (on
  512 training prints the probability sat at its cap while D's accuracy stayed at 0.96).
"""

from __future__ import annotations

from typing import Literal

import torch

from training.toolkit.errors import UserError

MODES = ("augment", "interval", "both")


class BalanceController:
    def __init__(
        self,
        mode: Literal["augment", "interval", "both"] = "both",
        low: float = 0.6,
        high: float = 0.85,
        augment_step: float = 0.01,
        max_augment_probability: float = 0.8,
        max_d_train_interval: int = 8,
        max_d_steps: int = 4,
    ) -> None:
        if mode not in MODES:
            raise UserError(f"model.balance.mode={mode!r}: choose one of {', '.join(MODES)}.")
        if not 0.0 <= low < high <= 1.0:
            raise UserError(f"model.balance: need 0 <= low < high <= 1, got low={low}, high={high}.")
        self.mode = mode
        self.low = low
        self.high = high
        self.augment_step = augment_step
        self.max_augment_probability = max_augment_probability
        self.max_d_train_interval = max_d_train_interval
        self.max_d_steps = max_d_steps

    def adjust_probability(self, probability: torch.Tensor, d_accuracy: torch.Tensor) -> None:
        """`augment` and `both` modes, after a D step: move the augmentation probability (a 0-dim tensor) in place."""
        if self.mode == "interval":
            return
        direction = (d_accuracy > self.high).to(probability.dtype) - (d_accuracy < self.low).to(
            probability.dtype
        )
        probability.add_(self.augment_step * direction).clamp_(0.0, self.max_augment_probability)

    def adjust_schedule(self, d_accuracy: float, interval: int, steps: int) -> tuple[int, int]:
        """`interval` and `both` modes, at an epoch's end: the new (d_train_interval, d_steps)."""
        if self.mode == "augment":
            return interval, steps
        if d_accuracy > self.high:
            if steps > 1:
                return interval, steps - 1
            return min(interval + 1, self.max_d_train_interval), steps
        if d_accuracy < self.low:
            if interval > 1:
                return interval - 1, steps
            return interval, min(steps + 1, self.max_d_steps)
        return interval, steps
