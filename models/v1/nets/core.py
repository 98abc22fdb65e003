"""The shared vision core: causal temporal front end, (2+1)-D conv blocks, optional ConvGRU.

Input (B, C, L, H, W) with lags ascending in time (index L-1 is the current frame); output
(B, out_channels, H, W) features for the current frame. Every temporal convolution is "valid"
(no padding), so the output only sees the L lags, and time shrinks by `kernel - 1` per layer; the
default front end spans all lags at once, so the blocks run on a single time step (cheap on CPU).
`output_steps=S` leaves S steps (the front end spans L - S + 1 lags) and returns them stacked as channels
(B, C * S, H, W), so each unit's readout weighs its own latency after the nonlinearity: the features of
step S - 1 - s are those of the frame s bins back. Without it every latency a unit needs costs channels
(the simulated units' 35-60 ms latencies, one per feature: at most 0.82 of T1's oracle; two: 0.95).
Norms have no running statistics (GroupNorm, per time step), so train and eval compute the same function
and the result does not depend on how a batch is split across processes. Spatial convs have stride 1
and, with `padding="same"`, feature (i, j) is centred on pixel (i, j). With `padding="valid"` each block
trims (k - 1) / 2 pixels per side (`margin` in all): the map covers only the frame's centre, computed
without the positions the zero padding reaches, at a fraction of the FLOPs (32 x 32 frames, kernels
[11, 5]: an 18 x 18 map, 37 % of the conv FLOPs; GroupNorm's statistics come from the map it sees). The
readout keeps frame coordinates and scales them to the map (MultiSessionNet), so it suits sessions whose
receptive fields lie in the centre, as the simulated ones do (within 35 % of the half-field).

Default config (32x32 frames, 8 lags; the Hydra YAML mirrors these keywords):
    {num_lags: 8, in_channels: 1, temporal_channels: 4, temporal_kernel: null (= num_lags),
     channels: [16, 16], spatial_kernels: [11, 5], temporal_kernels: [1, 1], norm: group,
     norm_groups: 4, nonlinearity: elu (or one per block, e.g. [halfsquare, elu]), padding: same,
     gru_channels: 0, gru_kernel: 3, output_steps: 1}
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from training.toolkit.errors import UserError


class HalfSquare(nn.Module):
    """relu(x)^2: the simple cell's half-squaring (and, summed over a quadrature pair, the complex cell's energy)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


NONLINEARITIES = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "softplus": nn.Softplus,
    "gelu": nn.GELU,
    "halfsquare": HalfSquare,
}
NORMS = ("group", "layer", "none")
PADDINGS = ("same", "valid")
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def make_norm(kind: str, channels: int, groups: int) -> nn.Module:
    """GroupNorm over (channels in a group, space) per sample and time step; "layer" is one group; no running stats."""
    if kind == "none":
        return nn.Identity()
    groups = 1 if kind == "layer" else groups
    if channels % groups:
        raise UserError(
            f"model.core.norm_groups={groups} must divide every block's channels (got {channels})."
        )
    return nn.GroupNorm(groups, channels)


class LagFilter(nn.Conv3d):
    """The front end's valid temporal filter over the lags: a `Conv3d` with kernel (k, 1, 1) and the same
    `weight` (so checkpoints are unchanged), computed as an einsum over lag windows. With one or a few input
    channels this is 5x faster forward + backward than `Conv3d` on CPU (48 -> 8 ms at 64 windows of 8 x 32 x 32,
    253 -> 51 ms at 384; equal within 5e-16 in float64); for 16 -> 16 channels Conv3d stays faster, so the
    blocks keep it."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__(in_channels, out_channels, (kernel, 1, 1), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        windows = x.unfold(2, self.kernel_size[0], 1)  # (B, C, T - k + 1, H, W, k)
        return torch.einsum("bcthwk,ock->bothw", windows, self.weight[..., 0, 0])


def per_step(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2-D `layer` to every time step of (B, C, T, H, W)."""
    batch, channels, time, height, width = x.shape
    y = layer(x.transpose(1, 2).reshape(batch * time, channels, height, width))
    return y.reshape(batch, time, *y.shape[1:]).transpose(1, 2)


class SpaceTimeBlock(nn.Module):
    """(2+1)-D conv block: k x k spatial conv per time step, causal valid temporal conv, norm, nonlinearity."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        spatial_kernel: int,
        temporal_kernel: int,
        norm: str,
        norm_groups: int,
        nonlinearity: str,
        padding: str = "same",
    ) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(
            in_channels, out_channels, spatial_kernel, padding=spatial_kernel // 2 if padding == "same" else 0
        )
        self.temporal = (
            nn.Conv3d(out_channels, out_channels, (temporal_kernel, 1, 1), bias=False)
            if temporal_kernel > 1
            else nn.Identity()
        )
        self.norm = make_norm(norm, out_channels, norm_groups)
        self.nonlinearity = NONLINEARITIES[nonlinearity]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = per_step(self.spatial, x)
        # normalised per time step, so each step's features are a function of its own frames alone
        return self.nonlinearity(per_step(self.norm, self.temporal(y)))


class ConvGRU(nn.Module):
    """A convolutional GRU run over the time axis of (B, C, T, H, W); returns the last hidden state."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel: int) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(
            in_channels + hidden_channels, 2 * hidden_channels, kernel, padding=kernel // 2
        )
        self.candidate = nn.Conv2d(
            in_channels + hidden_channels, hidden_channels, kernel, padding=kernel // 2
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, time, height, width = x.shape
        hidden = x.new_zeros(batch, self.hidden_channels, height, width)
        for t in range(time):
            frame = x[:, :, t]
            update, reset = torch.sigmoid(self.gates(torch.cat([frame, hidden], 1))).chunk(2, dim=1)
            candidate = torch.tanh(self.candidate(torch.cat([frame, reset * hidden], 1)))
            hidden = (1 - update) * hidden + update * candidate
        return hidden


class V1Core(nn.Module):
    """Temporal front end (`temporal_channels` learned filters over `temporal_kernel` lags), then one
    `SpaceTimeBlock` per entry of `channels`, then (when `gru_channels > 0`) a ConvGRU over the time
    steps left; otherwise the last time step.
    """

    def __init__(
        self,
        num_lags: int = 8,
        in_channels: int = 1,
        temporal_channels: int = 4,
        temporal_kernel: int | None = None,
        channels: Sequence[int] = (16, 16),
        spatial_kernels: Sequence[int] = (11, 5),
        temporal_kernels: Sequence[int] | None = None,
        norm: str = "group",
        norm_groups: int = 4,
        nonlinearity: str | Sequence[str] = "elu",
        padding: str = "same",
        gru_channels: int = 0,
        gru_kernel: int = 3,
        output_steps: int = 1,
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        spatial_kernels = [int(k) for k in spatial_kernels]
        temporal_kernels = (
            [1] * len(channels) if temporal_kernels is None else [int(k) for k in temporal_kernels]
        )
        output_steps = int(output_steps)
        temporal_kernel = num_lags - output_steps + 1 if temporal_kernel is None else int(temporal_kernel)
        nonlinearities = (
            [nonlinearity] * len(channels) if isinstance(nonlinearity, str) else list(nonlinearity)
        )
        self._check(
            num_lags, temporal_kernel, channels, spatial_kernels, temporal_kernels, norm, nonlinearities,
            output_steps,
        )  # fmt: skip
        if gru_channels > 0 and output_steps > 1:
            raise UserError(
                f"model.core.output_steps={output_steps} reads time steps the ConvGRU (model.core.gru_channels="
                f"{gru_channels}) already integrates into its last state; keep output_steps at 1 with a ConvGRU."
            )
        if padding not in PADDINGS:
            raise UserError(f"model.core.padding must be one of {PADDINGS}, got {padding!r}.")
        self.num_lags = num_lags
        self.frontend = LagFilter(in_channels, temporal_channels, temporal_kernel)
        widths = [temporal_channels, *channels]
        self.blocks = nn.Sequential(
            *(
                SpaceTimeBlock(widths[i], widths[i + 1], spatial_kernels[i], temporal_kernels[i], norm,
                               norm_groups, nonlinearities[i], padding)
                for i in range(len(channels))
            )
        )  # fmt: skip
        self.gru = ConvGRU(channels[-1], gru_channels, gru_kernel) if gru_channels > 0 else None
        self.output_steps = output_steps
        self.out_channels = gru_channels if gru_channels > 0 else channels[-1] * output_steps
        # pixels the map loses per side (the ConvGRU pads "same")
        self.margin = sum(k // 2 for k in spatial_kernels) if padding == "valid" else 0

    @staticmethod
    def _check(
        num_lags,
        temporal_kernel,
        channels,
        spatial_kernels,
        temporal_kernels,
        norm,
        nonlinearities,
        output_steps,
    ) -> None:
        if (
            not (len(channels) == len(spatial_kernels) == len(temporal_kernels) == len(nonlinearities))
            or not channels
        ):
            raise UserError(
                "model.core.channels, model.core.spatial_kernels, model.core.temporal_kernels and a list of "
                "model.core.nonlinearity need one entry per block; got "
                f"{channels}, {spatial_kernels}, {temporal_kernels}, {nonlinearities}."
            )
        if any(k % 2 == 0 for k in spatial_kernels):
            raise UserError(f"model.core.spatial_kernels must be odd (same padding), got {spatial_kernels}.")
        if output_steps < 1:
            raise UserError(f"model.core.output_steps must be at least 1, got {output_steps}.")
        steps_left = num_lags - (temporal_kernel - 1) - sum(k - 1 for k in temporal_kernels)
        if temporal_kernel < 1 or steps_left < output_steps:
            raise UserError(
                f"model.core.temporal_kernel={temporal_kernel} plus temporal_kernels={temporal_kernels} leave "
                f"{steps_left} of num_lags={num_lags} time steps, and model.core.output_steps={output_steps} "
                "reads that many; shorten the kernels (or read fewer steps)."
            )
        if norm not in NORMS:
            raise UserError(f"model.core.norm must be one of {NORMS}, got {norm!r}.")
        if unknown := [name for name in nonlinearities if name not in NONLINEARITIES]:
            raise UserError(
                f"model.core.nonlinearity must be one of {sorted(NONLINEARITIES)} (or a list of them, one per "
                f"block), got {unknown}."
            )

    def forward(self, stim: torch.Tensor) -> torch.Tensor:
        """(B, C, L, H, W) stimulus -> (B, out_channels, H, W) features of the current frame."""
        if stim.shape[2] != self.num_lags:
            raise ValueError(
                f"V1Core expects {self.num_lags} lags (model.core.num_lags), got {stim.shape[2]}."
            )
        x = self.blocks(self.frontend(stim))
        if self.gru is not None:
            return self.gru(x)
        return x[:, :, -self.output_steps :].flatten(1, 2)  # (B, C * steps, H, W): channel-major

    def smoothness_penalty(self) -> torch.Tensor:
        """Sum of squared Laplacians of every spatial kernel (rough kernels cost more)."""
        total = self.frontend.weight.new_zeros(())
        for block in self.blocks:
            weight = block.spatial.weight
            kernels = weight.reshape(-1, 1, *weight.shape[-2:])
            laplacian = LAPLACIAN.to(weight).view(1, 1, 3, 3)
            total = total + F.conv2d(kernels, laplacian, padding=1).square().sum()
        return total
