"""The Yates-Lab VisionCore Gaussian readout (`DynamicGaussianReadout`, `models/modules/readout.py`), with the
names its checkpoints use: `features.weight` (N, C, 1, 1), `bias`, `mean` (N, 2) as (y, x), `std` (N, 2),
`theta` (N,)."""

from __future__ import annotations

import torch
from torch import nn


def gaussian_masks(
    mean: torch.Tensor, std: torch.Tensor, theta: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """(N, H, W) rotated Gaussians centred at `mean` (y, x) in pixels from the map's centre, each summing to 1."""
    dtype, device = mean.dtype, mean.device
    ys = torch.linspace(-(height - 1) / 2, (height - 1) / 2, height, dtype=dtype, device=device)
    xs = torch.linspace(-(width - 1) / 2, (width - 1) / 2, width, dtype=dtype, device=device)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)  # (H, W, 2) as (y, x)
    offset = grid[None] - mean[:, None, None, :]
    cos, sin = torch.cos(theta), torch.sin(theta)
    along = offset[..., 0] * cos[:, None, None] + offset[..., 1] * sin[:, None, None]
    across = -offset[..., 0] * sin[:, None, None] + offset[..., 1] * cos[:, None, None]
    std = std.clamp(min=1e-3)
    mask = torch.exp(-0.5 * ((along / std[:, 0, None, None]) ** 2 + (across / std[:, 1, None, None]) ** 2))
    return mask / (mask.sum(dim=(-1, -2), keepdim=True) + 1e-8)


class GaussianReadout(nn.Module):
    """Each unit weights the last time step's features by a normalised, rotated 2-D Gaussian mask whose
    centre `mean` (y, x) and widths `std` are in pixels of the feature map measured from its centre
    (no grid_sample), then sums them with its own feature weights: `Σ_hw (W·f)_n(h, w) m_n(h, w) + b_n`."""

    def __init__(
        self,
        in_channels: int,
        n_units: int,
        bias: bool = True,
        initial_std: float = 1.0,
        initial_mean_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.features = nn.Conv2d(in_channels, n_units, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(n_units)) if bias else None
        self.mean = nn.Parameter(torch.randn(n_units, 2) * initial_mean_scale)
        self.std = nn.Parameter(torch.full((n_units, 2), float(initial_std)))
        self.theta = nn.Parameter(torch.zeros(n_units))

    def masks(self, height: int, width: int) -> torch.Tensor:
        """(N, H, W) normalised Gaussian masks on the centred pixel grid."""
        return gaussian_masks(self.mean, self.std, self.theta, height, width)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim == 5:
            features = features[:, :, -1]
        weighted = self.features(features)  # (B, N, H, W)
        out = (weighted * self.masks(*features.shape[-2:])).sum(dim=(-2, -1))
        return out + self.bias if self.bias is not None else out


class LinearReadout(nn.Module):
    """The seed's `FlattenedLinearReadout`: the last time step, averaged over space unless already 1×1, then
    `fc`. Its bias is registered twice (`bias` and `fc.bias`, one tensor), as the seed's state dicts hold it."""

    def __init__(self, in_channels: int, n_units: int, bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, n_units, bias=bias)
        self.bias = self.fc.bias if bias else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim == 5:
            features = features[:, :, -1]
        if features.shape[-2:] != (1, 1):
            features = features.mean(dim=(-2, -1), keepdim=True)
        return self.fc(features.flatten(1))


class ExcitatoryInhibitoryReadout(nn.Module):
    """The seed's `gaussianei` readout (2025-10-08 … 10-20): per unit an excitatory and an inhibitory Gaussian
    with their own non-negative (ReLU of the stored) feature weights; output E − I + bias. `ex_units` and
    `inh_units` are stored as the seed stored them (unused)."""

    def __init__(
        self,
        in_channels: int,
        n_units: int,
        bias: bool = True,
        initial_std_ex: float = 1.0,
        initial_std_inh: float = 1.0,
        weight_constraint_fn: str = "relu",
        **unused: object,
    ) -> None:
        super().__init__()
        if weight_constraint_fn != "relu":
            raise ValueError(
                f"gaussianei weight_constraint_fn={weight_constraint_fn!r}: only relu is ported."
            )
        self._features_ex_weight = nn.Parameter(torch.rand(n_units, in_channels, 1, 1))
        self._features_inh_weight = nn.Parameter(torch.rand(n_units, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(n_units)) if bias else None
        for part, std in (("ex", initial_std_ex), ("inh", initial_std_inh)):
            setattr(self, f"mean_{part}", nn.Parameter(torch.zeros(n_units, 2)))
            setattr(self, f"std_{part}", nn.Parameter(torch.full((n_units, 2), float(std))))
            setattr(self, f"theta_{part}", nn.Parameter(torch.zeros(n_units)))
            self.register_buffer(f"{part}_units", torch.arange(n_units))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim == 5:
            features = features[:, :, -1]
        height, width = features.shape[-2:]
        out = 0
        for part, sign in (("ex", 1.0), ("inh", -1.0)):
            weighted = nn.functional.conv2d(features, torch.relu(getattr(self, f"_features_{part}_weight")))
            mask = gaussian_masks(
                getattr(self, f"mean_{part}"),
                getattr(self, f"std_{part}"),
                getattr(self, f"theta_{part}"),
                height,
                width,
            )
            out = out + sign * (weighted * mask).sum(dim=(-2, -1))
        return out + self.bias if self.bias is not None else out
