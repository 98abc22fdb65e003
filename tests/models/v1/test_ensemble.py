"""MeanPrediction: several networks' rates averaged per session and unit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.v1.nets.ensemble import MeanPrediction


class Constant(nn.Module):
    def __init__(self, rates: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.rates = rates

    def forward(self, batch):
        return {name: self.rates[name].expand(len(batch[name]["stim"]), -1) for name in batch}


def test_each_sessions_rates_are_the_members_mean():
    batch = {"a": {"stim": torch.zeros(3, 2, 4, 4)}, "b": {"stim": torch.zeros(2, 2, 4, 4)}}
    members = [
        Constant({"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.5])}),
        Constant({"a": torch.tensor([3.0, 0.0]), "b": torch.tensor([1.5])}),
        Constant({"a": torch.tensor([2.0, 4.0]), "b": torch.tensor([4.0])}),
    ]
    rates = MeanPrediction(members)(batch)
    torch.testing.assert_close(rates["a"], torch.tensor([[2.0, 2.0]]).expand(3, 2))
    torch.testing.assert_close(rates["b"], torch.tensor([[2.0]]).expand(2, 1))


def test_the_members_are_submodules_and_an_empty_ensemble_is_refused():
    members = [nn.Linear(2, 2), nn.Linear(2, 2)]
    assert len(list(MeanPrediction(members).parameters())) == 4
    with pytest.raises(ValueError, match="at least one member"):
        MeanPrediction([])
