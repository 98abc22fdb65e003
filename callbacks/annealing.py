"""ScalarAnnealing: drive any scalar hyper-parameter of the LightningModule from the global step."""

from __future__ import annotations

from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from training.schedulers import SCALAR_SCHEDULE_KINDS, scalar_schedule


def _resolve(root: Any, attribute: str) -> tuple[Any, str]:
    """The object holding the last component of a dotted `attribute` path, and that component."""
    *parents, leaf = attribute.split(".")
    owner = root
    for depth, part in enumerate(parents):
        if not hasattr(owner, part):
            missing = ".".join(parents[: depth + 1])
            raise AttributeError(
                f"ScalarAnnealing: the LightningModule has no '{missing}' (from callbacks attribute '{attribute}'); "
                "give a dotted path to an existing attribute, e.g. generator.palette.temperature."
            )
        owner = getattr(owner, part)
    if not hasattr(owner, leaf):
        raise AttributeError(
            f"ScalarAnnealing: '{attribute}' does not exist on the LightningModule; create the attribute "
            "(a float, or a tensor buffer when the module is compiled) before annealing it."
        )
    return owner, leaf


class ScalarAnnealing(Callback):
    """Sets `pl_module.<attribute>` to `scalar_schedule(kind, start, end, global_step, total_steps)`.

    Set before every training batch from `trainer.global_step`, so a resumed run gets the same values by
    construction. A tensor attribute is filled in place (no recompiles, no sync); logged as `anneal/<name>`.
    """

    def __init__(
        self,
        attribute: str,
        start: float,
        end: float,
        total_steps: int,
        kind: Literal["linear", "cosine", "exponential", "constant"] = "linear",
        log_name: str | None = None,
    ) -> None:
        if kind not in SCALAR_SCHEDULE_KINDS:
            raise ValueError(f"ScalarAnnealing: kind must be one of {SCALAR_SCHEDULE_KINDS}, got {kind!r}.")
        if total_steps < 0:
            raise ValueError(f"ScalarAnnealing: total_steps must be >= 0, got {total_steps}.")
        scalar_schedule(kind, start, end, 0, total_steps)  # validates start/end for the kind
        self.attribute = attribute
        self.start = float(start)
        self.end = float(end)
        self.total_steps = int(total_steps)
        self.kind = kind
        self.log_name = f"anneal/{log_name or attribute}"

    def value_at(self, step: int) -> float:
        return scalar_schedule(self.kind, self.start, self.end, step, self.total_steps)

    def set_value(self, pl_module: pl.LightningModule, value: float) -> None:
        owner, leaf = _resolve(pl_module, self.attribute)
        current = getattr(owner, leaf)
        if isinstance(current, torch.Tensor):
            with torch.no_grad():
                current.fill_(value)
        else:
            setattr(owner, leaf, value)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        _resolve(pl_module, self.attribute)  # fail before training on a wrong path

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.set_value(pl_module, self.value_at(trainer.global_step))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.set_value(pl_module, self.value_at(trainer.global_step))

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        value = self.value_at(trainer.global_step)
        self.set_value(pl_module, value)
        if trainer._logger_connector.should_update_logs:
            pl_module.log(self.log_name, value, on_step=True, on_epoch=False)
