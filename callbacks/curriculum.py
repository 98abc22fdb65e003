"""CurriculumCallback: advance a named stage on the datamodule and the model on an epoch or step schedule."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any, Literal

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn


def _validate_stages(stages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    where = "callbacks.curriculum.stages"
    if not stages:
        raise ValueError(f"{where} is empty: give at least one stage {{name, start: 0}}.")
    checked: list[dict[str, Any]] = []
    for i, stage in enumerate(stages):
        if not isinstance(stage, Mapping) or "name" not in stage or "start" not in stage:
            raise ValueError(
                f"{where}[{i}] must be a mapping with keys name, start (and optional params); got {stage!r}."
            )
        extra = set(stage) - {"name", "start", "params"}
        if extra:
            raise ValueError(f"{where}[{i}] has unknown keys {sorted(extra)}; allowed: name, start, params.")
        start = stage["start"]
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"{where}[{i}].start must be an integer >= 0, got {start!r}.")
        params = stage.get("params") or {}
        if not isinstance(params, Mapping):
            raise ValueError(f"{where}[{i}].params must be a mapping, got {params!r}.")
        checked.append({"name": str(stage["name"]), "start": start, "params": dict(params)})
    if checked[0]["start"] != 0:
        raise ValueError(
            f"{where}[0].start must be 0 (a stage must be active from the beginning), got {checked[0]['start']}."
        )
    starts = [s["start"] for s in checked]
    if any(b <= a for a, b in pairwise(starts)):
        raise ValueError(f"{where} must be sorted by strictly increasing start; got starts {starts}.")
    names = [s["name"] for s in checked]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{where} names must be unique; repeated: {duplicates}.")
    return checked


class CurriculumCallback(Callback):
    """Calls `set_curriculum_stage(name, params)` on the datamodule and the LightningModule (where defined).

    The active stage is the last one whose `start` (an epoch or a global step, per `unit`) has been reached.
    The applied stage index is checkpointed; on resume it is re-applied in `on_fit_start`, before the train
    dataloader is built, then checked against the restored epoch/step in `on_train_start`. A stage the
    datamodule applies inside persistent dataloader workers needs the datamodule to propagate it.
    """

    def __init__(self, stages: Sequence[Mapping[str, Any]], unit: Literal["epoch", "step"] = "epoch") -> None:
        if unit not in ("epoch", "step"):
            raise ValueError(f"callbacks.curriculum.unit must be 'epoch' or 'step', got {unit!r}.")
        self.stages = _validate_stages(stages)
        self.unit = unit
        self.stage_index: int | None = None  # last applied (checkpointed)
        self._applied: int | None = None  # applied in this process
        self._log_pending = False
        self._starts = [s["start"] for s in self.stages]

    @property
    def stage_name(self) -> str | None:
        return None if self.stage_index is None else self.stages[self.stage_index]["name"]

    def active_index(self, counter: int) -> int:
        """Index of the stage active at epoch/step `counter`."""
        return max(bisect.bisect_right(self._starts, counter) - 1, 0)

    def _counter(self, trainer: pl.Trainer) -> int:
        return trainer.current_epoch if self.unit == "epoch" else trainer.global_step

    def _apply(self, trainer: pl.Trainer, pl_module: pl.LightningModule, index: int) -> None:
        stage = self.stages[index]
        for target in (getattr(trainer, "datamodule", None), pl_module):
            setter = getattr(target, "set_curriculum_stage", None)
            if callable(setter):
                setter(stage["name"], dict(stage["params"]))
        self._applied = self.stage_index = index
        self._log_pending = True
        rank_zero_info(
            f"CurriculumCallback: stage {index} '{stage['name']}' ({self.unit} {self._counter(trainer)})."
        )

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._applied = None
        self._apply(trainer, pl_module, self.stage_index if self.stage_index is not None else 0)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._maybe_advance(trainer, pl_module)  # the loop counters are restored by now

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.unit == "epoch":
            self._maybe_advance(trainer, pl_module)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.unit == "step":
            self._maybe_advance(trainer, pl_module)
        if self._log_pending or trainer._logger_connector.should_update_logs:
            pl_module.log(
                "curriculum/stage_index", float(self.stage_index or 0), on_step=True, on_epoch=False
            )
            self._log_pending = False

    def _maybe_advance(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        index = self.active_index(self._counter(trainer))
        if index != self._applied:
            self._apply(trainer, pl_module, index)

    def state_dict(self) -> dict[str, Any]:
        return {"stage_index": self.stage_index, "stage_name": self.stage_name}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        index, name = state_dict.get("stage_index"), state_dict.get("stage_name")
        if index is None:
            return
        if index >= len(self.stages) or self.stages[index]["name"] != name:
            rank_zero_warn(
                f"CurriculumCallback: the checkpoint was at stage {index} '{name}', which the configured stages do not "
                "have at that index; the stage is recomputed from the restored epoch/step instead."
            )
            return
        self.stage_index = index
