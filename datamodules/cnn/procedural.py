"""Procedural image classification set: noisy oriented gratings, one orientation per class.

Made in-process from a seed (no files, no network), so tests and laptop runs always have data.
Each class has a mean image (its grating), so even a linear model learns it within a few steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import Dataset

# Defaults of the `data.procedural` config block; any subset may be overridden.
PROCEDURAL_DEFAULTS: dict[str, Any] = {
    "num_samples": 2000,
    "num_classes": 4,
    "image_size": 16,
    "channels": 1,
    "noise": 0.1,
    "seed": 0,
}


def procedural_settings(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """`PROCEDURAL_DEFAULTS` updated by the user's `data.procedural` block, unknown keys refused."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(PROCEDURAL_DEFAULTS))
    if unknown:
        raise ValueError(
            f"data.procedural has unknown key(s) {unknown}; the known keys are "
            f"{sorted(PROCEDURAL_DEFAULTS)}. Fix the data.procedural block of the data config."
        )
    settings = {**PROCEDURAL_DEFAULTS, **overrides}
    if settings["num_classes"] < 2 or settings["num_samples"] < settings["num_classes"]:
        raise ValueError(
            "data.procedural needs num_classes >= 2 and num_samples >= num_classes, got "
            f"num_classes={settings['num_classes']}, num_samples={settings['num_samples']}."
        )
    return settings


def grating_class_names(num_classes: int) -> list[str]:
    """Class names that state each class's grating orientation, e.g. ``grating_045deg``."""
    return [f"grating_{round(180 * k / num_classes):03d}deg" for k in range(num_classes)]


def render_gratings(
    num_samples: int,
    num_classes: int,
    image_size: int,
    channels: int,
    noise: float,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render gratings as float images in [0, 1] of shape (N, C, H, W), plus balanced labels.

    Class k is a sinusoidal grating at orientation ``pi * k / num_classes`` with jittered spatial
    frequency (2-3 cycles per image), phase (±60°) and contrast, plus Gaussian pixel noise.
    """
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_samples) % num_classes
    labels = labels[torch.randperm(num_samples, generator=gen)]

    theta = math.pi * labels.double() / num_classes
    cycles = 2.0 + torch.rand(num_samples, generator=gen, dtype=torch.float64)
    phase = (torch.rand(num_samples, generator=gen, dtype=torch.float64) * 2 - 1) * (math.pi / 3)
    contrast = 0.6 + 0.4 * torch.rand(num_samples, generator=gen, dtype=torch.float64)

    coords = torch.linspace(-0.5, 0.5, image_size, dtype=torch.float64)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    along = torch.cos(theta)[:, None, None] * xx + torch.sin(theta)[:, None, None] * yy
    wave = torch.cos(2 * math.pi * cycles[:, None, None] * along + phase[:, None, None])
    clean = 0.5 + 0.35 * contrast[:, None, None] * wave

    pixel_noise = noise * torch.randn(
        num_samples, channels, image_size, image_size, generator=gen, dtype=torch.float64
    )
    images = (clean[:, None] + pixel_noise).clamp_(0.0, 1.0).float()
    return images, labels


class ProceduralGratings(Dataset):
    """Deterministic synthetic classification set: same settings, same images and labels."""

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = procedural_settings(settings)
        self.images, self.targets = render_gratings(**self.settings)
        self.classes = grating_class_names(self.settings["num_classes"])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])
