"""`MeanPrediction`: several trained v1 networks as one, predicting the mean of their rates.

Averaging the predictions of runs that differ only in their seed is how Sensorium entries and
neuralpredictors' ensembles are scored; on T1 small it measures how much of a model's error is its seed's
(docs/v1.md). Each member keeps its own core, readouts and shifters; the mean is taken per session and unit
over expected spikes per bin, so bits/spike, fraction of oracle and correlations score the mean rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.v1.nets.network import Batch


class MeanPrediction(nn.Module):
    """`forward(batch)` -> `{session: mean over members of (B, N) rates}`; members are evaluated in turn."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("MeanPrediction needs at least one member network")
        self.members = nn.ModuleList(members)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        total: dict[str, torch.Tensor] = {}
        for member in self.members:
            for name, rates in member(batch).items():
                total[name] = total[name] + rates if name in total else rates
        return {name: rates / len(self.members) for name, rates in total.items()}
