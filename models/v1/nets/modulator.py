"""Behaviour modulator: a session's behaviour (running, pupil, ...) scales the core's feature channels.

The gain is `exp(mlp(behavior))` per channel with a zero-initialised last layer, so the modulator starts
as the identity (gain 1). Behaviour should be standardised by the data pipeline (per-dimension z-score).
"""

from __future__ import annotations

import torch
from torch import nn


class BehaviorModulator(nn.Module):
    """(B, C, H, W) features x (B, D) behaviour -> features with a per-sample, per-channel gain."""

    def __init__(self, behavior_dim: int, num_channels: int, hidden_units: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = (
            [nn.Linear(behavior_dim, hidden_units), nn.ELU()] if hidden_units > 0 else []
        )
        last = nn.Linear(hidden_units if hidden_units > 0 else behavior_dim, num_channels)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(*layers, last)

    def forward(self, features: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        gain = torch.exp(self.mlp(behavior))
        return features * gain[:, :, None, None]
