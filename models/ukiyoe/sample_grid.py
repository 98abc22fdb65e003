"""The per-epoch picture of EMA samples."""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from training.toolkit.figures import new_figure
from training.toolkit.sample_files import to_uint8_image


def plot_sample_grid(images: torch.Tensor, title: str) -> Figure:
    """Images (N, 3, H, W) in [-1, 1] as a square-ish grid, drawn pixel-exact (nearest)."""
    columns = math.ceil(math.sqrt(len(images)))
    grid = make_grid(to_uint8_image(images.detach().cpu()), nrow=columns, padding=2, pad_value=255)
    figure = new_figure(0.9 * columns + 0.4, 0.9 * math.ceil(len(images) / columns) + 0.5)
    axes = figure.add_subplot()
    axes.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    axes.set_axis_off()
    axes.set_title(title, fontsize=9)
    return figure
