"""Test-time pictures of the abstractor: predicted vs true grammar scores, one panel per dimension."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from matplotlib.figure import Figure

from models.design.schema import GRAMMAR_NAMES
from training.toolkit.figures import new_figure

SOURCE_COLORS = {"true": "tab:blue", "encoded": "tab:orange"}


def plot_grammar_scatter(pairs: Mapping[str, torch.Tensor]) -> Figure:
    """`pairs[source]` is (N, 2, len(GRAMMAR_NAMES)): predicted (row 0) and true (row 1) scores, read
    from true F_Tensors (`true`) or the encoder's (`encoded`); the diagonal is a perfect abstractor."""
    figure = new_figure(3.0 * len(GRAMMAR_NAMES), 3.2)
    for index, name in enumerate(GRAMMAR_NAMES):
        axes = figure.add_subplot(1, len(GRAMMAR_NAMES), index + 1)
        for source, values in pairs.items():
            predicted, true = values[:, 0, index].numpy(), values[:, 1, index].numpy()
            mae = abs(predicted - true).mean()
            axes.scatter(
                true,
                predicted,
                s=4,
                alpha=0.5,
                color=SOURCE_COLORS[source],
                label=f"{source} (MAE {mae:.3f})",
            )
        axes.plot([0, 1], [0, 1], color="black", linewidth=0.8)
        axes.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", title=name, xlabel="true")
        axes.legend(fontsize=7, loc="upper left")
        if index == 0:
            axes.set_ylabel("predicted")
    return figure
