"""The innovation loop's picture: the same designs sampled from their initial and their optimised latents."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from models.design.schema import FORMAT_NAMES, GOALS
from training.toolkit.figures import new_figure
from training.toolkit.sample_files import to_uint8_image


def plot_before_after(
    before: torch.Tensor, after: torch.Tensor, grammar_before: float, grammar_after: float
) -> Figure:
    """Two panels of samples (N, 3, H, W) in [-1, 1], one column per goal (the fixed designs cycle goals
    fastest, then formats), titled with the mean grammar of each set."""
    columns = min(len(GOALS), len(before))
    rows = -(-len(before) // columns)
    figure = new_figure(2 * (0.6 + 0.8 * columns), 0.8 + 0.8 * rows)
    for position, (name, images, grammar) in enumerate(
        (("initial latents", before, grammar_before), ("optimised latents", after, grammar_after))
    ):
        axes = figure.add_subplot(1, 2, position + 1)
        grid = make_grid(to_uint8_image(images), nrow=columns, padding=2, pad_value=255)
        axes.imshow(grid.permute(1, 2, 0).numpy())
        width, height = grid.shape[2] / columns, grid.shape[1] / rows
        axes.set_xticks([width * (c + 0.5) for c in range(columns)], labels=GOALS[:columns], fontsize=7)
        labels = [FORMAT_NAMES[r % len(FORMAT_NAMES)] for r in range(rows)]
        axes.set_yticks([height * (r + 0.5) for r in range(rows)], labels=labels, fontsize=7)
        axes.set_title(f"{name}: mean grammar {grammar:.3f}", fontsize=9)
    return figure
