"""Gaussian readout: each unit reads the core's feature map at one learned position.

Positions `mu` live in `grid_sample` coordinates ([-1, 1], align_corners=False: x right, y down).
In training each sample reads at a position drawn from N(mu, sigma^2) (a learned, shrinking
uncertainty that spreads gradients while positions are still wrong); in eval it reads at mu.
Keep `init_sigma` small (~1 px): a wide position jitter averages out phase-sensitive features of
fine receptive fields (3 cyc/deg at 16 px/deg is a 5 px period), and with an L1 penalty on the
weights the readout then dies (0 bits/spike at sigma 0.25 in a simulation). Far receptive fields are
found by a data-driven start (`models.v1.readout_init.EnergySTA`), not by a wide sigma.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class GaussianReadout(nn.Module):
    """(B, C, H, W) features -> (B, N) logits = features at each unit's position . unit weights + bias.

    `init_mu` (N, 2) sets the starting positions; otherwise they are uniform in +-`init_mu_range`
    around the centre. Feature weights start at N(0, 1/C^2) so logits start near the bias.
    """

    def __init__(
        self,
        num_units: int,
        in_channels: int,
        init_sigma: float = 0.05,
        init_mu_range: float = 0.1,
        init_mu: Sequence[Sequence[float]] | torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if init_mu is None:
            mu = (2 * torch.rand(num_units, 2) - 1) * init_mu_range
        else:
            mu = torch.as_tensor(init_mu, dtype=torch.float32).clone()
            if mu.shape != (num_units, 2):
                raise ValueError(
                    f"GaussianReadout init_mu must have shape ({num_units}, 2), got {tuple(mu.shape)}."
                )
        self.mu = nn.Parameter(mu)
        self.sigma = nn.Parameter(torch.full((num_units,), float(init_sigma)))
        self.features = nn.Parameter(torch.randn(num_units, in_channels) / in_channels)
        self.bias = nn.Parameter(torch.zeros(num_units))

    @property
    def positions(self) -> torch.Tensor:
        """(N, 2) read positions (x, y) in [-1, 1], detached (for plots and RF recovery)."""
        return self.mu.detach().clamp(-1, 1)

    def forward(self, features: torch.Tensor, frame_to_map: Sequence[float] = (1.0, 1.0)) -> torch.Tensor:
        """`frame_to_map` (x, y): frame width / map width and height / height, when the core's map covers
        only the frame's centre (a "valid" core): positions and their jitter stay in frame coordinates."""
        batch = features.shape[0]
        grid = self.mu.clamp(-1, 1).expand(batch, -1, -1)
        if self.training:
            noise = torch.randn_like(grid) * self.sigma.abs()[None, :, None]
            grid = (grid + noise).clamp(-1, 1)
        if tuple(frame_to_map) != (1.0, 1.0):  # Python-float scales: no host-to-device copy per step
            x_scale, y_scale = frame_to_map
            grid = torch.stack((grid[..., 0] * x_scale, grid[..., 1] * y_scale), dim=-1).clamp(-1, 1)
        sampled = F.grid_sample(
            features, grid.unsqueeze(2), mode="bilinear", padding_mode="border", align_corners=False
        ).squeeze(3)  # (B, C, N)
        return torch.einsum("bcn,nc->bn", sampled, self.features) + self.bias

    def feature_l1(self) -> torch.Tensor:
        """Mean over units of each unit's L1 feature norm (independent of the number of units)."""
        return self.features.abs().sum(dim=1).mean()
