"""ScalarAnnealing: drive any scalar hyper-parameter of the LightningModule from the step or epoch."""

from __future__ import annotations

from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from training.toolkit.schedulers import ScheduleKind, check_scalar_schedule, scalar_schedule


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
    """Sets `pl_module.<attribute>` to `scalar_schedule(kind, start, end, counter, total_steps, decay=decay)`.

    `unit="step"`: the counter is `trainer.global_step`, set before every training batch and logged as
    `anneal/<name>` at the log interval. `unit="epoch"`: the counter is `trainer.current_epoch`, set at
    each training epoch start and logged once per epoch (the Gumbel-temperature recipe: `kind="geometric"`,
    `decay=0.95`). Either counter is restored from the checkpoint, so a resumed run gets the same values by
    construction. A tensor attribute is filled in place (no recompiles, no sync).
    """

    def __init__(
        self,
        attribute: str,
        start: float,
        end: float,
        total_steps: int | None = None,
        kind: ScheduleKind = "linear",
        log_name: str | None = None,
        decay: float | None = None,
        unit: Literal["step", "epoch"] = "step",
    ) -> None:
        if unit not in ("step", "epoch"):
            raise ValueError(
                f"ScalarAnnealing: callbacks.<name>.unit must be 'step' or 'epoch', got {unit!r}."
            )
        # validates start/end/total_steps/decay for the kind, naming the config keys
        check_scalar_schedule(kind, start, end, total_steps, decay, "ScalarAnnealing", "callbacks.<name>.")
        self.attribute = attribute
        self.start = float(start)
        self.end = float(end)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.kind = kind
        self.decay = None if decay is None else float(decay)
        self.unit = unit
        self.log_name = f"anneal/{log_name or attribute}"

    def value_at(self, counter: int) -> float:
        """The value after `counter` steps (or epochs, with `unit="epoch"`)."""
        return scalar_schedule(self.kind, self.start, self.end, counter, self.total_steps, decay=self.decay)

    def counter(self, trainer: pl.Trainer) -> int:
        return trainer.current_epoch if self.unit == "epoch" else trainer.global_step

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
        self.set_value(pl_module, self.value_at(self.counter(trainer)))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.set_value(pl_module, self.value_at(self.counter(trainer)))

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.unit != "epoch":
            return
        value = self.value_at(trainer.current_epoch)
        self.set_value(pl_module, value)
        pl_module.log(self.log_name, value, on_step=False, on_epoch=True, batch_size=1)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.unit != "step":
            return
        value = self.value_at(trainer.global_step)
        self.set_value(pl_module, value)
        if trainer._logger_connector.should_update_logs:
            pl_module.log(self.log_name, value, on_step=True, on_epoch=False)
