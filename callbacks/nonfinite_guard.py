"""NonFiniteGuard: skip optimizer steps whose gradients hold NaN/Inf; stop after K such steps in a row."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy
from pytorch_lightning.utilities import rank_zero_warn
from torch.optim import Optimizer


def grads_finite(grads: list[torch.Tensor]) -> torch.Tensor:
    """One on-device boolean: every element of every gradient is finite (max-abs norms never overflow)."""
    norms = torch._foreach_norm(grads, math.inf, dtype=torch.float32)
    device = norms[0].device
    return torch.stack([n.to(device) for n in norms]).isfinite().all()


_SHARDED = (FSDPStrategy, DeepSpeedStrategy, ModelParallelStrategy)


class NonFiniteGuard(Callback):
    """Drops the gradients of an optimizer step when any is NaN/Inf, so `optimizer.step()` leaves the
    weights and optimizer state untouched; counts skips (`guard/skipped_steps`) and raises after
    `max_consecutive` skipped steps in a row (per optimizer). Works in automatic and manual optimization.

    Cost: one host read of one flag per optimizer step, inherent to deciding whether to step. Under a
    16-mixed GradScaler, overflow skips while the loss scale is > 1 are counted but not held against K.
    """

    def __init__(self, max_consecutive: int = 5) -> None:
        if max_consecutive < 1:
            raise ValueError(f"NonFiniteGuard: max_consecutive must be >= 1, got {max_consecutive}.")
        self.max_consecutive = int(max_consecutive)
        self.skipped_total = 0
        self._consecutive: dict[int, int] = {}

    @property
    def consecutive(self) -> int:
        """The longest current run of skipped steps over the optimizers."""
        return max(self._consecutive.values(), default=0)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        index = next((i for i, o in enumerate(trainer.optimizers) if o is optimizer), 0)
        if params:
            bad = ~grads_finite([p.grad for p in params])
            if trainer.world_size > 1 and isinstance(trainer.strategy, _SHARDED):
                # each rank holds a different gradient shard: every rank must take the same decision
                # (under DDP the gradients are all-reduced already, so the ranks agree without this)
                bad = trainer.strategy.reduce(bad.float(), reduce_op="sum") > 0
            if bool(bad):  # the one host read per optimizer step
                self._skip(trainer, pl_module, params, index)
                return
        self._consecutive[index] = 0
        if trainer._logger_connector.should_update_logs:
            pl_module.log("guard/skipped_steps", float(self.skipped_total), on_step=True, on_epoch=False)

    def _skip(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, params: list[torch.Tensor], index: int
    ) -> None:
        for p in params:
            p.grad = None  # optimizers skip parameters without gradients: weights and state stay as they are
        self.skipped_total += 1
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        overflow = scaler is not None and scaler.is_enabled() and scaler.get_scale() > 1.0
        if not overflow:
            self._consecutive[index] = self._consecutive.get(index, 0) + 1
        pl_module.log("guard/skipped_steps", float(self.skipped_total), on_step=True, on_epoch=False)
        rank_zero_warn(
            f"NonFiniteGuard: NaN/Inf gradients at global step {trainer.global_step} (optimizer {index}); "
            f"step skipped ({self._consecutive.get(index, 0)} in a row, {self.skipped_total} in total)."
        )
        if self._consecutive.get(index, 0) >= self.max_consecutive:
            raise RuntimeError(
                f"NonFiniteGuard: {self._consecutive[index]} optimizer steps in a row (optimizer {index}, global "
                f"step {trainer.global_step}) had NaN/Inf gradients; {self.skipped_total} steps skipped in total. "
                "Check the learning rate (lower model.optimizer.lr or lengthen the warmup), the data (NaN/Inf "
                "inputs or targets; trainer.detect_anomaly=true finds the op), and the precision (try "
                "trainer.precision=32 or bf16-mixed instead of 16-mixed). Raise "
                "callbacks.nonfinite_guard.max_consecutive to tolerate more."
            )

    def state_dict(self) -> dict[str, Any]:
        return {"skipped_total": self.skipped_total, "consecutive": dict(self._consecutive)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped_total = int(state_dict.get("skipped_total", 0))
        self._consecutive = {int(k): int(v) for k, v in state_dict.get("consecutive", {}).items()}
