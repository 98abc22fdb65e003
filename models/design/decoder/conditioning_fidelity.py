"""Conditioning fidelity: how often the abstractor reads a generated design's requested goal and format back."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torchmetrics import Metric

FIELDS = ("goal", "format")


class ConditioningFidelity(Metric):
    """Accuracy per field of the abstractor's goal/format (arg-max of its logits) read from generated samples
    against the metadata they were generated for. Sums as states, so DDP results are exact."""

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for field in FIELDS:
            self.add_state(f"{field}_correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, reading: Mapping[str, torch.Tensor], requested: Mapping[str, torch.Tensor]) -> None:
        """`reading`: the abstractor's output (`goal`, `format` logits (B, classes)); `requested`: int64 (B,)."""
        for field in FIELDS:
            hits = (reading[field].argmax(dim=1) == requested[field]).sum()
            setattr(self, f"{field}_correct", getattr(self, f"{field}_correct") + hits)
        self.total += requested[FIELDS[0]].shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        """`{goal, format}`: the share of samples whose field is read back as requested."""
        return {field: getattr(self, f"{field}_correct") / self.total for field in FIELDS}
