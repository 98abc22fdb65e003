"""Figures a LightningModule reports: saved under `<run>/images/` and handed to the image-capable loggers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

IMAGES_DIR = "images"


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure on an Agg canvas (no pyplot global state, safe in workers and on servers)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def report_figure(module: pl.LightningModule, figure: Figure, key: str, filename: str) -> Path:
    """Save `figure` as `<default_root_dir>/images/<filename>` and log it under `key` to wandb/TensorBoard."""
    path = Path(module.trainer.default_root_dir) / IMAGES_DIR / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    for logger in module.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)])
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(key, figure, global_step=module.global_step)
    return path


def plot_confusion_matrix(confusion: torch.Tensor, class_names: Sequence[str]) -> Figure:
    """Matplotlib figure (Agg canvas, no pyplot state) of a confusion matrix: rows true, columns predicted."""
    num_classes = confusion.shape[0]
    counts = confusion.to(torch.long).numpy()
    size = min(4.0 + 0.35 * num_classes, 24.0)
    figure = new_figure(size, size)
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title("test confusion matrix")
    if num_classes <= 30:
        axes.set_xticks(range(num_classes), labels=class_names, rotation=90)
        axes.set_yticks(range(num_classes), labels=class_names)
    if num_classes <= 20:
        threshold = counts.max() / 2 if counts.size else 0
        for true_index in range(num_classes):
            for predicted_index in range(num_classes):
                value = counts[true_index, predicted_index]
                axes.text(
                    predicted_index,
                    true_index,
                    str(value),
                    ha="center",
                    va="center",
                    color="white" if value > threshold else "black",
                    fontsize=8,
                )
    return figure
