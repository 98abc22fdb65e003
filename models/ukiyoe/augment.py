"""`DiffAugment`: differentiable augmentation applied alike to real and fake images of a GAN.

Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training": colour (brightness,
saturation, contrast), integer translation with zero padding and cutout, all differentiable w.r.t. the
image so the generator learns through them. Each op is applied to each sample with probability `p`
(drawn on the image's device and blended with `where`, so `p` may be a tensor the balance controller
adjusts, and is never read on the host).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from training.toolkit.errors import UserError


def color_jitter(x: torch.Tensor) -> torch.Tensor:
    """Random brightness shift, saturation and contrast scale per sample (DiffAugment's ranges)."""
    batch = x.shape[0]
    x = x + (torch.rand(batch, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(batch, 1, 1, 1, device=x.device, dtype=x.dtype) * 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(batch, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translate(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Shift each sample by up to `ratio` of its size in pixels along each axis; the uncovered border is 0."""
    batch, _, height, width = x.shape
    shift_y, shift_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = torch.randint(-shift_y, shift_y + 1, (batch, 1, 1), device=x.device)
    dx = torch.randint(-shift_x, shift_x + 1, (batch, 1, 1), device=x.device)
    rows = torch.arange(height, device=x.device)[None, :, None]
    cols = torch.arange(width, device=x.device)[None, None, :]
    # Index the zero-padded image; sources outside the image land on the zero border.
    rows = (rows + dy + 1).clamp(0, height + 1).expand(batch, height, width)
    cols = (cols + dx + 1).clamp(0, width + 1).expand(batch, height, width)
    padded = nn.functional.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)
    samples = torch.arange(batch, device=x.device)[:, None, None]
    return padded[samples, rows, cols].permute(0, 3, 1, 2)


def cut_out(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero a square of `ratio` times the image size centred at a random pixel of each sample."""
    batch, _, height, width = x.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    top = torch.randint(0, height, (batch, 1, 1), device=x.device) - size_y // 2
    left = torch.randint(0, width, (batch, 1, 1), device=x.device) - size_x // 2
    rows = torch.arange(height, device=x.device)[None, :, None]
    cols = torch.arange(width, device=x.device)[None, None, :]
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~inside)[:, None].to(x.dtype)


class DiffAugment(nn.Module):
    """x (B, C, H, W) -> augmented x; `translation` and `cutout` are fractions of the image size."""

    def __init__(
        self,
        policy: Sequence[str] = ("color", "translation", "cutout"),
        translation: float = 0.125,
        cutout: float = 0.5,
    ) -> None:
        super().__init__()
        ops: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
            "color": color_jitter,
            "translation": partial(translate, ratio=translation),
            "cutout": partial(cut_out, ratio=cutout),
        }
        unknown = sorted(set(policy) - set(ops))
        if unknown:
            raise UserError(
                f"DiffAugment: unknown augmentation policy {unknown}; the augmentation `policy` accepts "
                f"any of {sorted(ops)}."
            )
        self.policy = tuple(policy)
        self.translation = translation
        self.cutout = cutout
        self.ops = [ops[name] for name in self.policy]

    def forward(self, x: torch.Tensor, probability: float | torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            # rand is in [0, 1): probability 0 never applies an op, probability 1 always does.
            apply = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < probability
            x = torch.where(apply, op(x), x)
        return x
