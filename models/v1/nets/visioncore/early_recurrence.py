"""The behaviour modulators and ConvGRUs of the Yates-Lab VisionCore's network code before 2025-10-20 (eras
A and B, see early.py), with the names their checkpoints use: the era's MLP encoder and FiLM modulator; era
A's ConvGRU (`cell.conv_x` with bias, `cell.conv_h` without, reset gate unused); era B's (conv_h(h)
group-normalised by `cell.layer_norm`, a learned `h0`, `n = tanh(n + r·h)`); the `convgru` modulator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from training.toolkit.errors import UserError


class GeluBlock(nn.Module):
    """`linear`, GELU, dropout: a block of the era's MLP."""

    def __init__(self, in_features: int, out_features: int, dropout: float) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.act(self.linear(x)))


class EncoderA(nn.Module):
    """`mlp`: GeluBlocks (`mlp.{i}.linear`), the last a block too when `last_activation`, else a bare Linear;
    the input added when the widths match and `residual`. Dropout only in hidden blocks."""

    def __init__(
        self, in_features: int, dims: Sequence[int], last_activation: bool, dropout: float, residual: bool
    ) -> None:
        super().__init__()
        widths = [in_features, *dims]
        layers: list[nn.Module] = []
        for index, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            last = index == len(dims) - 1
            layers.append(
                GeluBlock(a, b, 0.0 if last else dropout) if not last or last_activation else nn.Linear(a, b)
            )
        self.mlp = nn.Sequential(*layers)
        self.residual = residual and in_features == widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mlp(x)
        return out + x if self.residual else out


class FiLMModulatorA(nn.Module):
    """`film`: an `encoder` of the behaviour, then per channel `scale_layer(e) · x + shift_layer(e)`."""

    def __init__(
        self,
        behavior_dim: int,
        feature_dim: int,
        encoder_params: Mapping[str, Any] | None = None,
        **unused: Any,
    ) -> None:
        super().__init__()
        params = dict(encoder_params or {})
        if params.get("activation", "gelu") != "gelu":
            raise UserError(f"film encoder activation={params.get('activation')!r}: only gelu is ported.")
        dims = list(params.get("dims", [64, 64]))
        last, dropout = bool(params.get("last_layer_activation", False)), float(params.get("dropout", 0.0))
        self.encoder = EncoderA(behavior_dim, dims, last, dropout, bool(params.get("residual", False)))
        self.scale_layer = nn.Linear(dims[-1], feature_dim)
        self.shift_layer = nn.Linear(dims[-1], feature_dim)

    def forward(self, features: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        code = self.encoder(behavior.to(features.dtype))
        shape = (code.shape[0], -1, 1, 1, 1)
        return self.scale_layer(code).view(shape) * features + self.shift_layer(code).view(shape)


class GRUCellA(nn.Module):
    """`conv_x` (bias) and `conv_h` (no bias), 'same' k×k; gates [z | r | n] of their sum; r unused."""

    def __init__(self, in_channels: int, hidden: int, kernel_size: int) -> None:
        super().__init__()
        self.conv_x = nn.Conv2d(in_channels, 3 * hidden, kernel_size, padding=kernel_size // 2)
        self.conv_h = nn.Conv2d(hidden, 3 * hidden, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        update, _, new = (self.conv_x(x) + self.conv_h(h)).chunk(3, dim=1)
        update = torch.sigmoid(update)
        return (1 - update) * h + update * torch.tanh(new)


class ConvGRUA(nn.Module):
    """`cell` run along the lag axis from index 0; h starts at 0; returns the final h (B, H, h, w)."""

    def __init__(self, in_channels: int, hidden_dim: int = 128, kernel_size: int = 3, **unused: Any) -> None:
        super().__init__()
        self.cell = GRUCellA(in_channels, hidden_dim, kernel_size)
        self.hidden_dim = self.out_channels = hidden_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.new_zeros(x.shape[0], self.hidden_dim, *x.shape[3:])
        for t in range(x.shape[2]):
            h = self.cell(x[:, :, t], h)
        return h


class ConvGRUModulatorA(nn.Module):
    """`convgru` modulator: behaviour → `beh_emb` (Linear), broadcast and appended to the features, a
    `gru`, a 1×1 `output_proj`; returns (B, H, 1, h, w)."""

    def __init__(
        self,
        behavior_dim: int,
        feature_dim: int,
        hidden_dim: int = 128,
        beh_emb_dim: int = 32,
        kernel_size: int = 3,
        era: str = "A",
        **gru_options: Any,
    ) -> None:
        super().__init__()
        self.beh_emb = nn.Linear(behavior_dim, beh_emb_dim)
        channels = feature_dim + beh_emb_dim
        self.gru = (
            ConvGRUB(channels, hidden_dim, kernel_size, **gru_options)
            if era == "B"
            else ConvGRUA(channels, hidden_dim, kernel_size)
        )
        self.output_proj = nn.Conv2d(hidden_dim, hidden_dim, 1)
        self.out_dim = hidden_dim

    def forward(self, features: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        batch, _, frames, height, width = features.shape
        code = self.beh_emb(behavior.to(features.dtype))
        joined = torch.cat(
            [features, code[:, :, None, None, None].expand(batch, -1, frames, height, width)], dim=1
        )
        return self.output_proj(self.gru(joined)).unsqueeze(2)


class GRUCellB(nn.Module):
    """Era B: `conv_x` (bias), `conv_h` (no bias) group-normalised by `layer_norm` (GroupNorm(min(32, H), 3H)),
    gates [z | r | n], `n = tanh(n + r·h)`."""

    def __init__(self, in_channels: int, hidden: int, kernel_size: int, use_layer_norm: bool = True) -> None:
        super().__init__()
        self.conv_x = nn.Conv2d(in_channels, 3 * hidden, kernel_size, padding=kernel_size // 2)
        self.conv_h = nn.Conv2d(hidden, 3 * hidden, kernel_size, padding=kernel_size // 2, bias=False)
        self.layer_norm = nn.GroupNorm(min(32, hidden), 3 * hidden) if use_layer_norm else nn.Identity()

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        update, reset, new = (self.conv_x(x) + self.layer_norm(self.conv_h(h))).chunk(3, dim=1)
        update, reset = torch.sigmoid(update), torch.sigmoid(reset)
        return (1 - update) * h + update * torch.tanh(new + reset * h)


class ConvGRUB(nn.Module):
    """Era B: `cell` along the lag axis from index 0, h from the learned `h0` (or 0); the final h."""

    def __init__(
        self,
        in_channels: int,
        hidden_dim: int = 128,
        kernel_size: int = 3,
        use_layer_norm: bool = True,
        learnable_h0: bool = True,
        use_residual: bool = False,
        grad_clip_val: float | None = None,
        **unused: Any,
    ) -> None:
        super().__init__()
        if use_residual or unused.get("use_depthwise") or unused.get("groups", 1) != 1:
            raise UserError("convgru: use_residual, use_depthwise and groups of this code are not ported.")
        self.cell = GRUCellB(in_channels, hidden_dim, kernel_size, use_layer_norm)
        self.h0 = nn.Parameter(torch.zeros(1, hidden_dim, 1, 1)) if learnable_h0 else None
        self.grad_clip_val = grad_clip_val
        self.hidden_dim = self.out_channels = hidden_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0], self.hidden_dim, *x.shape[3:])
        h = self.h0.expand(shape) if self.h0 is not None else x.new_zeros(shape)
        for t in range(x.shape[2]):
            h = self.cell(x[:, :, t], h)
            if self.grad_clip_val is not None and self.training:
                h = h.clamp(-self.grad_clip_val, self.grad_clip_val)
        return h
