"""What Lightning does not restore on resume: the global RNG streams and the train-loader position.

Augmentation and dropout read the global RNGs, so without them a resumed run diverges. The
loader position is also saved by Lightning for stateful loaders, but Lightning drops it when the
train loader was built before the restore (e.g. by `trainer.estimated_stepping_batches` inside
`configure_optimizers`), so it is applied here once the loop is about to start.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class ResumeState(Callback):
    """Saves rank 0's python/numpy/torch/CUDA RNG states and the train loader's position."""

    def __init__(self) -> None:
        self._loader_state: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        loader = trainer.train_dataloader
        checkpoint["resume_state"] = {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "train_loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
        }

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get("resume_state")
        if state is None:
            return
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if state["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        self._loader_state = state["train_loader"]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loader = trainer.train_dataloader
        if self._loader_state is not None and hasattr(loader, "load_state_dict"):
            loader.load_state_dict(self._loader_state)
        self._loader_state = None
