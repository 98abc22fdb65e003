"""What `task=sample` of every generative model shares: the device choice and the grid picture."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid

GRID_LIMIT = 64  # grid.png shows at most this many samples; the arrays file holds all of them


def to_uint8_image(image: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (clamped), for saving and for FID/KID."""
    return image.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def sampling_device(device: str) -> torch.device:
    """`sample.device`: auto (cuda when present, else cpu) or an explicit torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def save_grid_png(path: Path, pixels: torch.Tensor) -> Path:
    """The first GRID_LIMIT uint8 images (N, 3, H, W) as one square-ish grid PNG at `path`."""
    shown = pixels[:GRID_LIMIT].cpu()
    grid = make_grid(shown, nrow=math.ceil(math.sqrt(len(shown))), padding=2, pad_value=255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)
    return path
