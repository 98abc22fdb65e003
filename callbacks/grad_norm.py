"""GradNormMonitor: total gradient norm per optimizer step, computed only on logging steps."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_warn
from torch.optim import Optimizer


class GradNormMonitor(Callback):
    """Logs `train/grad_norm` (the `norm_type` norm of all gradients, unscaled and before clipping).

    With several optimizers it also logs `train/grad_norm_opt{i}`, and `train/grad_norm` covers them all.
    Computed only on `trainer.log_every_n_steps` steps (thinned further by `every_n_steps`, which must be a
    multiple of it) and logged as a device tensor, so there is no host sync in the callback.
    """

    def __init__(self, norm_type: float | str = 2.0, every_n_steps: int | None = None) -> None:
        self.norm_type = float(norm_type)
        if self.norm_type <= 0:
            raise ValueError(f"GradNormMonitor: norm_type must be > 0 or 'inf', got {norm_type!r}.")
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"GradNormMonitor: every_n_steps must be >= 1 or null, got {every_n_steps}.")
        self.every_n_steps = every_n_steps
        self._norms: dict[int, torch.Tensor] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        every, log_every = self.every_n_steps, trainer.log_every_n_steps
        if every is not None and log_every and every % log_every:
            rank_zero_warn(
                f"GradNormMonitor: every_n_steps={every} is not a multiple of trainer.log_every_n_steps={log_every}; "
                "the norm is only computed on steps that are both, i.e. every lcm of the two."
            )

    def _due(self, trainer: pl.Trainer) -> bool:
        if not trainer._logger_connector.should_update_logs:
            return False
        if self.every_n_steps is None:
            return True
        step = trainer.fit_loop.epoch_loop._batches_that_stepped + 1  # the step Lightning is about to log
        return step % self.every_n_steps == 0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._norms = {}

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        if not self._due(trainer):
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        norm = torch.nn.utils.get_total_norm(grads, self.norm_type)
        if len(trainer.optimizers) == 1:
            pl_module.log("train/grad_norm", norm, on_step=True, on_epoch=False)
            return
        index = next((i for i, o in enumerate(trainer.optimizers) if o is optimizer), 0)
        self._norms[index] = norm
        pl_module.log(f"train/grad_norm_opt{index}", norm, on_step=True, on_epoch=False)
        norms = torch.stack([n.to(norm.device) for n in self._norms.values()])
        pl_module.log(
            "train/grad_norm", torch.linalg.vector_norm(norms, self.norm_type), on_step=True, on_epoch=False
        )
