"""MaskedLoss against hand-computed Poisson NLL values."""

from __future__ import annotations

import math

import torch

from models.v1.losses import MaskedLoss


def test_sum_and_count_on_known_values() -> None:
    pred = torch.tensor([[1.0, 2.0], [0.5, 4.0]])
    robs = torch.tensor([[0.0, 3.0], [1.0, 2.0]])
    dfs = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # the (1, 1) entry is ignored
    total, count = MaskedLoss(eps=0.0).sum_and_count(pred, robs, dfs)
    expected = (1.0 - 0.0) + (2.0 - 3 * math.log(2.0)) + (0.5 - math.log(0.5))
    torch.testing.assert_close(total, torch.tensor(expected))
    assert count == 3


def test_sessions_weighted_by_valid_entries_not_by_session() -> None:
    loss = MaskedLoss(eps=0.0)
    rates = {"a": torch.full((2, 1), math.e), "b": torch.ones(4, 1)}
    batch = {
        "a": {"robs": torch.ones(2, 1), "dfs": torch.ones(2, 1)},  # NLL e - 1 per entry, 2 entries
        "b": {
            "robs": torch.zeros(4, 1),
            "dfs": torch.tensor([[1.0], [1.0], [1.0], [0.0]]),
        },  # NLL 1, 3 entries
    }
    torch.testing.assert_close(loss(rates, batch), torch.tensor((2 * (math.e - 1) + 3 * 1.0) / 5))


def test_all_padding_gives_zero_not_nan() -> None:
    rates = {"a": torch.ones(2, 3)}
    batch = {"a": {"robs": torch.ones(2, 3), "dfs": torch.zeros(2, 3)}}
    assert MaskedLoss()(rates, batch) == 0
