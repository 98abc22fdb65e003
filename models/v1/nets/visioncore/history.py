"""The Yates-Lab VisionCore spike-history head (`MultiDatasetV1ModelSpikeHistory`, 2025-10-30 onward): per
session, an MLP of the units' own counts in the last `num_lags` bins, added to the readout before the output
nonlinearity. Its layers carry torch's hook-based spectral norm, whose `weight_orig`, `weight_u` and
`weight_v` the seed's checkpoints hold; in eval σ = uᵀ W v from the stored vectors (no power iteration)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import spectral_norm as hook_spectral_norm

from training.toolkit.errors import UserError


class HiddenBlock(nn.Module):
    """`linear` then ReLU."""

    def __init__(self, linear: nn.Module) -> None:
        super().__init__()
        self.linear = linear
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.linear(x))


class SpikeHistoryMLP(nn.Module):
    """(B, num_lags, N) counts, lag index 0 the previous bin -> (B, N), through `mlp.{i}`."""

    def __init__(
        self,
        n_units: int,
        num_lags: int = 5,
        hidden_dims: Sequence[int] = (32, 10),
        act_type: str = "relu",
        spectral_norm: bool = False,
        bias: bool = True,
        dropout: float = 0.0,
        output_activation: bool = False,
    ) -> None:
        super().__init__()
        if act_type != "relu" or dropout or output_activation:
            raise UserError(
                "history_encoder: only relu hidden layers, no dropout and no output activation are ported."
            )
        widths = [num_lags * n_units, *hidden_dims, n_units]

        def linear(a: int, b: int) -> nn.Module:
            layer = nn.Linear(a, b, bias=bias)
            return hook_spectral_norm(layer) if spectral_norm else layer

        layers: list[nn.Module] = [
            HiddenBlock(linear(a, b)) for a, b in zip(widths[:-2], widths[1:-1], strict=True)
        ]
        layers.append(linear(widths[-2], widths[-1]))
        self.mlp = nn.Sequential(*layers)
        self.num_lags = num_lags

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.mlp(history.reshape(history.shape[0], -1))
