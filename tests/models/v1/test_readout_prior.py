"""The empirical prior on readout features: mean and shrunk covariance of the pretrained units."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.v1.readout_prior import SHRINKAGE, ReadoutFeaturePrior


def test_the_penalty_sums_squared_mahalanobis_distances_under_the_shrunk_covariance():
    generator = torch.Generator().manual_seed(0)
    pretrained = torch.randn(50, 4, generator=generator) * torch.tensor([2.0, 1.0, 0.5, 0.1]) + 0.3
    new = torch.randn(7, 4, generator=generator)
    prior = ReadoutFeaturePrior(pretrained)

    data = pretrained.double().numpy()
    covariance = np.cov(data.T)
    covariance = (1 - SHRINKAGE) * covariance + SHRINKAGE * np.trace(covariance) / 4 * np.eye(4)
    offset = new.double().numpy() - data.mean(0)
    expected = np.sum(np.einsum("nc,cd,nd->n", offset, np.linalg.inv(covariance), offset))

    assert prior.penalty(new).item() == pytest.approx(expected, rel=1e-5)
    assert prior.penalty(prior.mean.expand(3, -1)).item() == pytest.approx(0.0, abs=1e-6)


def test_directions_the_pretrained_units_vary_little_in_cost_more():
    pretrained = torch.randn(200, 2, generator=torch.Generator().manual_seed(1)) * torch.tensor([1.0, 0.1])
    prior = ReadoutFeaturePrior(pretrained - pretrained.mean(0))
    assert prior.penalty(torch.tensor([[0.0, 0.5]])) > 5 * prior.penalty(torch.tensor([[0.5, 0.0]]))


def test_the_prior_is_not_saved_with_the_model():
    prior = ReadoutFeaturePrior(torch.randn(5, 3))
    assert prior.state_dict() == {}


def test_one_unit_is_not_a_distribution():
    with pytest.raises(ValueError, match="units >= 2"):
        ReadoutFeaturePrior(torch.randn(1, 3))
