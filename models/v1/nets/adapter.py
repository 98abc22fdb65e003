"""Per-session input adapter: a per-channel affine map of the stimulus, initialised to the identity.

Sessions differ in monitor calibration and luminance; a gain and an offset per channel let each session
match the shared core's input statistics without touching the core.
"""

from __future__ import annotations

import torch
from torch import nn


class SessionAdapter(nn.Module):
    """`x * weight + bias` per input channel of a (B, C, L, H, W) stimulus; weight 1, bias 0 at init."""

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(in_channels))
        self.bias = nn.Parameter(torch.zeros(in_channels))

    def forward(self, stim: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1, 1)
        return stim * self.weight.view(shape) + self.bias.view(shape)
