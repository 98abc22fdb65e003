"""Figures a LightningModule reports: saved under `<run>/images/` and handed to the image-capable loggers."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
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
