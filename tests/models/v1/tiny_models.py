"""Tiny v1 networks and batches shared by the model tests (16x16 frames, 4 lags: well under a second)."""

from __future__ import annotations

import torch

from models.v1.nets.core import V1Core
from models.v1.nets.network import MultiSessionNet, SessionSpec

LAGS, HEIGHT, WIDTH = 4, 16, 16
SESSIONS = [
    SessionSpec("alpha", 3, [10, 11, 12], behavior_dim=2, pixels_per_degree=8.0, frame_shape=(HEIGHT, WIDTH)),
    SessionSpec(
        "beta", 5, [1, 2, 3, 4, 5], behavior_dim=2, pixels_per_degree=8.0, frame_shape=(HEIGHT, WIDTH)
    ),
]


def tiny_core(**overrides) -> V1Core:
    config = dict(num_lags=LAGS, temporal_channels=2, channels=[4, 4], spatial_kernels=[5, 3], norm_groups=2)
    return V1Core(**(config | overrides))


def tiny_net(**overrides) -> MultiSessionNet:
    config = dict(sessions=SESSIONS, core=tiny_core(), readout={"init_sigma": 0.1}, adapter=True)
    return MultiSessionNet(**(config | overrides))


def make_batch(sizes: dict[str, int] | None = None, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    sizes = sizes or {"alpha": 3, "beta": 2}
    units = {spec.name: spec.num_units for spec in SESSIONS}
    return {
        name: {
            "stim": torch.randn(size, LAGS, HEIGHT, WIDTH, generator=generator),
            "robs": torch.poisson(torch.full((size, units[name]), 0.5), generator=generator),
            "dfs": torch.ones(size, units[name]),
            "eyepos": torch.randn(size, LAGS, 2, generator=generator),
            "behavior": torch.randn(size, 2, generator=generator),
        }
        for name, size in sizes.items()
    }
