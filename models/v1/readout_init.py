"""Data-driven starting positions for Gaussian readouts: where does local contrast energy predict spikes?

A readout started near the frame centre cannot find a receptive field far from it (the gradient on its
position is ~0 there). An energy spike-triggered average finds both simple and complex cells: per unit,
the covariance between its spikes and the local stimulus energy (squared contrast, box-blurred),
averaged over lags; its peak is the starting position. Streams batches, so it runs over a loader.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from models.v1.nets.shifter import pixel_centre_grid


class EnergySTA:
    """Accumulate per-unit energy STAs from (stim (B, L, H, W), robs (B, N), dfs (B, N)) batches.

    `lags` picks the stimulus lag indices (0 = oldest, L-1 = current frame; None = all), `blur` the box
    size in pixels. `positions()` returns (N, 2) `grid_sample` coordinates for `init_readout_positions`.
    """

    def __init__(self, lags: Sequence[int] | None = None, blur: int = 5) -> None:
        self.lags = None if lags is None else list(lags)
        self.blur = blur
        self.spike_energy: torch.Tensor | None = None  # sum m y E, (N, H, W)
        self.mask_energy: torch.Tensor | None = None  # sum m E, (N, H, W)
        self.spikes: torch.Tensor | None = None  # sum m y, (N,)
        self.count: torch.Tensor | None = None  # sum m, (N,)

    @torch.no_grad()
    def update(self, stim: torch.Tensor, robs: torch.Tensor, dfs: torch.Tensor) -> None:
        frames = stim.double() if self.lags is None else stim[:, self.lags].double()
        energy = F.avg_pool2d(frames.square(), self.blur, stride=1, padding=self.blur // 2).mean(1)
        flat = energy.reshape(energy.shape[0], -1)  # (B, H*W)
        weighted = (dfs * robs).double()
        terms = (weighted.T @ flat, dfs.double().T @ flat, weighted.sum(0), dfs.double().sum(0))
        if self.spikes is None:
            self.spike_energy, self.mask_energy, self.spikes, self.count = terms
            self.shape = energy.shape[1:]
        else:
            self.spike_energy += terms[0]
            self.mask_energy += terms[1]
            self.spikes += terms[2]
            self.count += terms[3]

    def maps(self) -> torch.Tensor:
        """(N, H, W) covariance of spikes with local energy (sum m (y - ybar) E)."""
        if self.spikes is None:
            raise RuntimeError("EnergySTA.maps() needs at least one update() first.")
        mean_rate = self.spikes / self.count.clamp_min(1.0)
        return (self.spike_energy - mean_rate[:, None] * self.mask_energy).reshape(-1, *self.shape)

    def positions(self) -> torch.Tensor:
        """(N, 2) (x, y) in [-1, 1] of each unit's energy-STA peak (pixel centres, align_corners=False)."""
        maps = self.maps()
        peak = maps.reshape(maps.shape[0], -1).argmax(dim=1)
        return pixel_centre_grid(*self.shape).reshape(-1, 2)[peak.cpu()]
