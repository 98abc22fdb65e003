"""The Growing-NCA training pool (Mordvintsev et al. 2020): seed state, sample pool, damage and the RGBA MSE.

Training batches are drawn from a pool of earlier results, so the automaton also learns to keep a grown
pattern stable; the worst sample of each batch is replaced by the seed (it keeps learning to grow from
scratch), and a few of the best are damaged (it learns to regenerate). Everything stays on the device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.ukiyoe.nets.nca import RGB


def seed_state(channels: int, size: int) -> torch.Tensor:
    """(C, size, size) zeros with one alive cell in the centre: alpha and the hidden channels at 1, RGB 0."""
    seed = torch.zeros(channels, size, size)
    seed[:, size // 2, size // 2] = 1.0
    seed[RGB, size // 2, size // 2] = 0.0
    return seed


def rgba_mse(rgba: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) per-sample mean squared error of (B, 4, H, W) RGBA against a (1 or B, 4, H, W) target."""
    return (rgba - target).square().mean(dim=(1, 2, 3))


def circle_masks(
    count: int, size: int, device: torch.device | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(count, 1, size, size) bool: a random disc per sample (centre in the middle half of the canvas as in the
    paper, radius 0.1-0.4 of the side: twice the paper's, whose canvas had a wide empty border)."""
    coords = torch.linspace(-1.0, 1.0, size, device=device)
    y, x = coords[:, None], coords[None, :]
    centre = torch.rand(count, 2, 1, 1, device=device, generator=generator) - 0.5
    radius = 0.2 + 0.6 * torch.rand(count, 1, 1, device=device, generator=generator)
    inside = (x - centre[:, 0]).square() + (y - centre[:, 1]).square() < radius.square()
    return inside[:, None]


def damage_masks(
    count: int,
    size: int,
    half_plane_share: float = 0.0,
    device: torch.device | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(count, 1, size, size) bool: per sample a random disc (`circle_masks`) or, with probability
    `half_plane_share`, the half of the canvas beyond a line through its centre at a random angle: the test's
    cut (the right half) in every orientation, which no disc is large enough to teach."""
    discs = circle_masks(count, size, device, generator)
    if half_plane_share <= 0.0:
        return discs
    coords = torch.linspace(-1.0, 1.0, size, device=device)
    angle = 2 * math.pi * torch.rand(count, 1, 1, device=device, generator=generator)
    halves = coords[None, None, :] * angle.cos() + coords[None, :, None] * angle.sin() > 0
    use_half = torch.rand(count, 1, 1, device=device, generator=generator) < half_plane_share
    return torch.where(use_half, halves, discs[:, 0])[:, None]


def half_plane_mask(size: int, device: torch.device | None = None) -> torch.Tensor:
    """(1, 1, size, size) bool: the right half of the canvas (the test's 50 % cut through the centre)."""
    mask = torch.zeros(1, 1, size, size, dtype=torch.bool, device=device)
    mask[..., size // 2 :] = True
    return mask


def prepare_batch(
    states: torch.Tensor,
    losses: torch.Tensor,
    seed: torch.Tensor,
    damage_count: int = 0,
    generator: torch.Generator | None = None,
    half_plane_share: float = 0.0,
) -> torch.Tensor:
    """The batch to train on: the highest-loss sample becomes the seed, the `damage_count` lowest-loss ones
    lose a random disc or half (`damage_masks`; all channels zeroed). Masks, not indexing with loss-dependent values: no host sync."""
    batch = states.shape[0]
    ranks = losses.argsort(descending=True)
    worst = F.one_hot(ranks[0], batch).bool()[:, None, None, None]
    states = torch.where(worst, seed, states)
    if damage_count > 0:
        best = torch.zeros(batch, dtype=torch.bool, device=states.device)
        best[ranks[batch - damage_count :]] = True
        damage = damage_masks(batch, states.shape[-1], half_plane_share, states.device, generator)
        states = states * ~(damage & best[:, None, None, None])
    return states


class SamplePool(nn.Module):
    """`size` NCA states (a checkpointed buffer, so a resumed run continues with the same pool)."""

    def __init__(self, size: int, seed: torch.Tensor) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"SamplePool: size must be >= 1, got {size}.")
        self.register_buffer("seed", seed.clone(), persistent=False)
        self.register_buffer("states", seed.expand(size, *seed.shape).clone())

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch_size` distinct pool indices and (copies of) their states."""
        indices = torch.randperm(len(self.states), device=self.states.device, generator=generator)[
            :batch_size
        ]
        return indices, self.states[indices]

    @torch.no_grad()
    def update(self, indices: torch.Tensor, states: torch.Tensor) -> None:
        """Write the batch's new states back to where they were drawn from."""
        self.states[indices] = states.detach()
