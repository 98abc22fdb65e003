"""`PaletteUsage`: how much of its palette the generator uses (a torchmetrics state: DDP-correct sums)."""

from __future__ import annotations

import torch
from torchmetrics import Metric

USED_SHARE = 0.01  # a colour counts as used when it covers at least 1 % of the pixels


class PaletteUsage(Metric):
    """Accumulates the share of pixels per palette colour over batches of palette weights (B, P, H, W).

    `compute()` -> `colours_used` (colours with >= 1 % of the pixels) and `entropy_bits` of the shares
    (log2 P when every colour is used equally, 0 when one colour fills every image)."""

    full_state_update = False

    def __init__(self, num_colors: int) -> None:
        super().__init__()
        self.add_state("pixels", default=torch.zeros(num_colors), dist_reduce_fx="sum")

    def update(self, weights: torch.Tensor) -> None:
        self.pixels += weights.detach().float().sum(dim=(0, 2, 3))

    def compute(self) -> dict[str, torch.Tensor]:
        share = self.pixels / self.pixels.sum().clamp_min(1e-12)
        entropy = -(share * share.clamp_min(1e-12).log2()).sum()
        return {"colours_used": (share >= USED_SHARE).sum().float(), "entropy_bits": entropy}
