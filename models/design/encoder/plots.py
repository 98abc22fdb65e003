"""Prediction panels of the design encoder: per sample the input, then each F_Tensor channel true vs predicted."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from models.design.schema import COLOR_ID_RGB, F_COLOR, F_HIERARCHY, F_IMAGE, F_TEXT
from training.toolkit.figures import new_figure
from training.toolkit.sample_files import to_uint8_image

# (title, channel, colour map, value range) of each F_Tensor channel shown; colour IDs (no colour map) are
# shown in their vocabulary colours
CHANNEL_VIEWS = (
    ("text", F_TEXT, "gray", (0.0, 1.0)),
    ("image", F_IMAGE, "gray", (0.0, 1.0)),
    ("colour ID", F_COLOR, None, (None, None)),
    ("hierarchy", F_HIERARCHY, "magma", (0.0, 1.0)),
)


def _view(f_tensor: torch.Tensor, channel: int):
    """One channel of one F_Tensor (4, H, W) as imshow reads it: values, or RGB for colour IDs."""
    values = f_tensor[channel].numpy()
    return COLOR_ID_RGB[values.round().astype(int)] if channel == F_COLOR else values


def plot_encoder_predictions(images: torch.Tensor, truth: torch.Tensor, predicted: torch.Tensor) -> Figure:
    """Rows: samples. Columns: input, then `true <channel>` / `pred <channel>` for text, image, colour, hierarchy.

    `images` float (N, 3, H, W) in [-1, 1]; `truth`, `predicted` F_Tensors (N, 4, H, W) on the CPU.
    """
    rows = images.shape[0]
    columns = 1 + 2 * len(CHANNEL_VIEWS)
    figure = new_figure(1.4 * columns, 1.5 * rows)
    axes = figure.subplots(rows, columns, squeeze=False)
    pictures = to_uint8_image(images).permute(0, 2, 3, 1).numpy()
    for row in range(rows):
        panels = [("input", pictures[row], None, (None, None))]
        for title, channel, cmap, (low, high) in CHANNEL_VIEWS:
            panels.append((f"true {title}", _view(truth[row], channel), cmap, (low, high)))
            panels.append((f"pred {title}", _view(predicted[row], channel), cmap, (low, high)))
        for axis, (title, picture, cmap, (low, high)) in zip(axes[row], panels, strict=True):
            axis.imshow(picture, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            axis.set_axis_off()
            if row == 0:
                axis.set_title(title, fontsize=8)
    return figure
