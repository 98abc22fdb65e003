"""Conditioning fidelity: per-field accuracy of the abstractor's reading against the requested metadata."""

from __future__ import annotations

import pytest
import torch

from models.design.decoder.conditioning_fidelity import ConditioningFidelity


def logits_for(classes: list[int], num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(classes), num_classes).float() * 3 - 1


def test_accuracy_per_field_over_streamed_batches():
    fidelity = ConditioningFidelity()
    # batch 1: goals 2/3 right, formats 3/3; batch 2: goals 0/1, formats 0/1
    fidelity.update(
        {"goal": logits_for([0, 4, 2], 5), "format": logits_for([1, 1, 3], 4)},
        {"goal": torch.tensor([0, 4, 1]), "format": torch.tensor([1, 1, 3])},
    )
    fidelity.update(
        {"goal": logits_for([3], 5), "format": logits_for([0], 4)},
        {"goal": torch.tensor([2]), "format": torch.tensor([2])},
    )
    result = fidelity.compute()
    assert result["goal"].item() == pytest.approx(2 / 4)
    assert result["format"].item() == pytest.approx(3 / 4)
    fidelity.reset()
    fidelity.update(
        {"goal": logits_for([1], 5), "format": logits_for([2], 4)},
        {"goal": torch.tensor([1]), "format": torch.tensor([2])},
    )
    assert fidelity.compute() == {"goal": 1.0, "format": 1.0}
