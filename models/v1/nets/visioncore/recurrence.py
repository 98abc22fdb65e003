"""The Yates-Lab VisionCore behaviour modulator (`concat`) and recurrence (`convgru`), code of 2025-10-20
onward (`models/modules/modulator.py`, `recurrent.py`, `mlp.py`), with the names its checkpoints use."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLPBlock(nn.Module):
    """`linear` then GELU: a hidden layer of the seed's MLP."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.linear(x))


class MLPEncoder(nn.Module):
    """`mlp`: GELU hidden blocks, a plain Linear last (`mlp.{i}.linear.*` ... `mlp.{last}.*`)."""

    def __init__(self, in_features: int, dims: Sequence[int]) -> None:
        super().__init__()
        widths = [in_features, *dims]
        layers: list[nn.Module] = [MLPBlock(a, b) for a, b in zip(widths[:-2], widths[1:-1], strict=True)]
        layers.append(nn.Linear(widths[-2], widths[-1]))
        self.mlp = nn.Sequential(*layers)
        self.residual = in_features == widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mlp(x)
        return out + x if self.residual else out


class ConcatModulator(nn.Module):
    """Appends `encoder(behaviour)` (B, D) as D constant channels to the (B, C, T, H, W) features."""

    def __init__(
        self, behavior_dim: int, feature_dim: int | None = None, encoder_params: dict | None = None
    ) -> None:
        super().__init__()
        dims = list((encoder_params or {}).get("dims", [64, 64]))
        self.encoder = MLPEncoder(behavior_dim, dims)
        self.out_dim = dims[-1]

    def forward(self, features: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        batch, _, frames, height, width = features.shape
        code = self.encoder(behavior.to(features.dtype))
        return torch.cat(
            [features, code[:, :, None, None, None].expand(batch, -1, frames, height, width)], dim=1
        )


class ConvGRUCell(nn.Module):
    """`update_gate`, `reset_gate`, `out_gate`: 'same' k×k convolutions of [x, h] (out: [x, r·h])."""

    def __init__(self, in_channels: int, hidden: int, kernel_size: int) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.update_gate = nn.Conv2d(in_channels + hidden, hidden, kernel_size, padding=padding)
        self.reset_gate = nn.Conv2d(in_channels + hidden, hidden, kernel_size, padding=padding)
        self.out_gate = nn.Conv2d(in_channels + hidden, hidden, kernel_size, padding=padding)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        both = torch.cat([x, h], dim=1)
        update, reset = torch.sigmoid(self.update_gate(both)), torch.sigmoid(self.reset_gate(both))
        new = torch.tanh(self.out_gate(torch.cat([x, reset * h], dim=1)))
        return (1 - update) * h + update * new


class ConvGRU(nn.Module):
    """Stacked ConvGRU cells (`cells.{l}`) run along the lag axis from index 0 (the newest frame) to the
    last; h starts at 0. Returns the sequence (B, H, T, h, w); the readout reads its last step."""

    def __init__(
        self, in_channels: int, hidden_dim: int = 128, kernel_size: int = 3, n_layers: int = 1
    ) -> None:
        super().__init__()
        widths = [in_channels] + [hidden_dim] * (n_layers - 1)
        self.cells = nn.ModuleList(ConvGRUCell(width, hidden_dim, kernel_size) for width in widths)
        self.hidden_dim = hidden_dim
        self.out_channels = hidden_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for cell in self.cells:
            h = x.new_zeros(x.shape[0], self.hidden_dim, *x.shape[3:])
            steps = []
            for t in range(x.shape[2]):
                h = cell(x[:, :, t], h)
                steps.append(h)
            x = torch.stack(steps, dim=2)
        return x
