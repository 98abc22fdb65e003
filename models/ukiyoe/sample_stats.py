"""Statistics of a batch of generated images: diversity (a collapse detector) and palette fidelity."""

from __future__ import annotations

import torch


def mean_pairwise_distance(images: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between all pairs of images (a collapse detector: 0 = every sample alike)."""
    flat = images.flatten(1)
    distances = torch.cdist(flat, flat, p=1) / flat.shape[1]
    count = len(flat)
    return distances.sum() / max(count * (count - 1), 1)


def palette_exact_share(images: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """Share of pixels of `images` (B, 3, H, W) that equal one of the palette `colors` (P, 3) exactly."""
    pixels = images.permute(0, 2, 3, 1).reshape(-1, 1, 3)
    return (pixels == colors[None]).all(dim=-1).any(dim=-1).float().mean()
