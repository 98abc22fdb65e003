"""MaskedLoss: Poisson negative log-likelihood of spike counts, masked by the validity array `dfs`.

Per entry `pred - y * log(pred + eps)` (the terms of -log p(y | pred) that depend on pred). Sessions
return a sum and a count of valid entries, so a multi-session batch is weighted by valid data, not
by session, and DDP padding samples (dfs == 0) contribute nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class MaskedLoss(nn.Module):
    """Mean Poisson NLL over the valid entries of every session in a batch."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def sum_and_count(
        self, pred: torch.Tensor, robs: torch.Tensor, dfs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of dfs-weighted NLL terms, sum of dfs) for one session's (B, N) arrays."""
        nll = pred - robs * torch.log(pred + self.eps)
        return (nll * dfs).sum(), dfs.sum()

    def forward(
        self, rates: Mapping[str, torch.Tensor], batch: Mapping[str, Mapping[str, torch.Tensor]]
    ) -> torch.Tensor:
        """Sum over sessions of masked NLL divided by the total number of valid entries (at least 1)."""
        sums, counts = zip(
            *(
                self.sum_and_count(pred, batch[name]["robs"], batch[name]["dfs"])
                for name, pred in rates.items()
            ),
            strict=True,
        )
        return torch.stack(sums).sum() / torch.stack(counts).sum().clamp_min(1.0)
