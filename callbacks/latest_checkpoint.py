"""`last.ckpt` that is always the newest state, plus the previous ones to fall back on.

Lightning >= 2.6 refreshes ModelCheckpoint's `last.ckpt` only when a top-k file is saved, so a
monitored checkpoint cannot double as the resume point. This callback saves every N optimizer
steps, at every epoch end and at fit end, keeps the `keep` newest step files, and mirrors the
newest to `last.ckpt`. Writes go through the trainer's (atomic) CheckpointIO.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint

from training.toolkit.checkpoints import remove_checkpoint_file


class LatestCheckpoint(Checkpoint):
    """Unmonitored resume checkpoints: `step00000123.ckpt` files and `last.ckpt`."""

    def __init__(self, dirpath: str, every_n_train_steps: int = 200, keep: int = 2) -> None:
        if keep < 2:
            raise ValueError(
                "callbacks.latest_checkpoint.keep must be >= 2 so a corrupt newest file has a fallback"
            )
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = every_n_train_steps
        self.keep = keep
        self._last_saved_step = -1

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def summary_facts(self) -> dict[str, str]:
        """For the run's summary.json: the newest state, which `resume=auto` continues from."""
        return {"last_checkpoint": str(self.last_path)} if self.last_path.exists() else {}

    def save(self, trainer: pl.Trainer) -> Path:
        """Save the current state now (also used by the preemption callback)."""
        step = trainer.global_step
        path = self.dirpath / f"step{step:08d}.ckpt"
        if step != self._last_saved_step or not path.exists():
            # the full state (optimizer, loops, callbacks): what exact resume needs; saying so also keeps
            # Lightning from logging "`weights_only` was not set" (about saving, not loading) every save
            trainer.save_checkpoint(path, weights_only=False)
            trainer.save_checkpoint(self.last_path, weights_only=False)
            self._last_saved_step = step
            if trainer.is_global_zero:
                self._prune()
        return path

    def _prune(self) -> None:
        step_files = sorted(self.dirpath.glob("step*.ckpt"))
        for old in step_files[: -self.keep]:
            remove_checkpoint_file(old)

    def on_train_batch_end(self, trainer: pl.Trainer, *_: object) -> None:
        n = self.every_n_train_steps
        if n and trainer.global_step % n == 0 and trainer.global_step != self._last_saved_step:
            self.save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer)

    def state_dict(self) -> dict[str, int]:
        return {"last_saved_step": self._last_saved_step}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self._last_saved_step = state_dict["last_saved_step"]
