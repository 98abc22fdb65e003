"""An empirical Gaussian prior on readout feature vectors, fitted to a pretrained run's units.

New readouts on a frozen core (T3) learn each unit's C feature weights from that unit's spikes alone;
with a quarter of the data the estimates are noisy (the same units' vectors from 25 % and 100 % of the
data agree at cosine 0.63). The pretrained units show which mixtures of the core's channels cells
use: their mean `m` and covariance `S`. The penalty sum_n (w_n - m)' S^-1 (w_n - m) is twice the negative
log of that prior, so weighted by 1 / (2 E) (E the training set's unit x bin entries, the loss being
their mean) training finds each unit's MAP features: sharing across units without tying any two together.
"""

from __future__ import annotations

import torch
from torch import nn

SHRINKAGE = 0.1  # of the covariance towards its mean variance: invertible, and not over-confident in
# directions the pretrained units barely span (235 units, 32 channels at T3 small)


class ReadoutFeaturePrior(nn.Module):
    """Mean and precision of (U, C) pretrained feature vectors; `penalty((N, C))` is the sum of the given
    vectors' squared Mahalanobis distances from the mean. Buffers are not saved with the model."""

    def __init__(self, features: torch.Tensor, shrinkage: float = SHRINKAGE) -> None:
        super().__init__()
        if features.ndim != 2 or features.shape[0] < 2:
            raise ValueError(
                f"ReadoutFeaturePrior needs (units >= 2, channels) features, got {tuple(features.shape)}."
            )
        features = features.double()
        covariance = torch.cov(features.T)
        eye = torch.eye(covariance.shape[0], dtype=covariance.dtype)
        covariance = (1 - shrinkage) * covariance + shrinkage * covariance.diagonal().mean() * eye
        self.register_buffer("mean", features.mean(0).float(), persistent=False)
        self.register_buffer("precision", torch.linalg.inv(covariance).float(), persistent=False)

    def penalty(self, features: torch.Tensor) -> torch.Tensor:
        offset = features - self.mean
        return ((offset @ self.precision) * offset).sum()
