"""EpochHeartbeat: one summary line per training epoch and a final performance summary for summary.json."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from callbacks.step_readings import batch_size_of, check_fields, read_fields

log = logging.getLogger(__name__)

_EPOCH_LOSS_KEYS = ("train/loss_epoch", "train/loss", "loss_epoch", "loss")


class EpochHeartbeat(Callback):
    """Logs epoch, time, mean train loss, val metrics and samples/s at each train epoch end (rank 0).

    A batch's time runs from the previous batch's end (or the epoch start) to its own end, so it includes
    data loading; validation time is excluded. `performance` holds the fit's totals (updated every epoch).

    `fields` (label -> metric key, e.g. `{G_Loss: train/g_loss, Temperature: anneal/temperature}`) replaces
    the train loss in the epoch line with those metrics' epoch values, and adds the last epoch's values to
    `performance` as `final/<label>` (and to the final line).
    """

    def __init__(self, fields: Mapping[str, str] | None = None) -> None:
        self.fields = check_fields(fields, "EpochHeartbeat (callbacks.epoch_heartbeat.fields)")
        self.performance: dict[str, float] = {}
        self._val_start: float | None = None
        self._reset_fit(time.perf_counter(), 0)

    def summary_facts(self) -> dict[str, dict[str, float]]:
        """For the run's summary.json: the fit's throughput totals."""
        return {"performance": self.performance} if self.performance else {}

    def _reset_fit(self, now: float, global_step: int) -> None:
        self._fit_start = now
        self._fit_excluded = 0.0
        self._start_step = global_step
        self._epochs = 0
        self._batches = 0
        self._samples = 0
        self._batch_sum = 0.0
        self._batch_min = math.inf
        self._batch_max = 0.0
        self._epoch_start = now
        self._epoch_excluded = 0.0
        self._epoch_samples = 0
        self._last_end = now
        self._last_fields: dict[str, float] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset_fit(time.perf_counter(), trainer.global_step)
        self.performance = {}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        now = time.perf_counter()
        self._epoch_start = self._last_end = now
        self._epoch_excluded = 0.0
        self._epoch_samples = 0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        size = batch_size_of(batch) or 0
        self._epoch_samples += size
        self._samples += size

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        duration = now - self._last_end
        self._last_end = now
        self._batches += 1
        self._batch_sum += duration
        self._batch_min = min(self._batch_min, duration)
        self._batch_max = max(self._batch_max, duration)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._val_start is None:
            return
        paused = time.perf_counter() - self._val_start
        self._val_start = None
        self._last_end += paused
        self._epoch_excluded += paused
        self._fit_excluded += paused

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        now = time.perf_counter()
        wall = now - self._epoch_start
        train_time = max(wall - self._epoch_excluded, 1e-9)
        self._epochs += 1
        metrics = trainer.callback_metrics  # epoch-level values; reading them once per epoch is the only sync
        if self.fields:
            self._last_fields = read_fields(metrics, self.fields, "_epoch")
        self._update_performance(trainer, now)
        if not trainer.is_global_zero:
            return
        if self.fields:
            train = " ".join(f"{label}={value:.4g}" for label, value in self._last_fields.items())
        else:
            loss = next((float(metrics[k]) for k in _EPOCH_LOSS_KEYS if k in metrics), math.nan)
            train = f"train/loss={loss:.4g}"
        val = " ".join(
            f"{k}={float(v):.4g}"
            for k, v in sorted(metrics.items())
            if k.startswith(("val/", "val_")) and v.numel() == 1
        )
        log.info(
            "epoch %d done: time=%.1fs (train %.1fs) %s %s samples/s=%.1f",
            trainer.current_epoch,
            wall,
            train_time,
            train,
            val,
            self._epoch_samples * trainer.world_size / train_time,
        )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._update_performance(trainer, time.perf_counter())
        if trainer.is_global_zero and self.performance:
            p = self.performance
            final = " ".join(f"{label}={value:.4g}" for label, value in self._last_fields.items())
            log.info(
                "performance: total %.1fs (train %.1fs), %d epochs, %d steps, %d batches, batch time avg %.1f / "
                "min %.1f / max %.1f ms, %.1f samples/s%s",
                p["total_time_s"],
                p["train_time_s"],
                p["epochs"],
                p["steps"],
                p["batches"],
                p["batch_time_ms_avg"],
                p["batch_time_ms_min"],
                p["batch_time_ms_max"],
                p["samples_per_s"],
                f", final: {final}" if final else "",
            )

    def _update_performance(self, trainer: pl.Trainer, now: float) -> None:
        """Totals for this fit (this process): host clock values only."""
        if self._batches == 0:
            return
        total = now - self._fit_start
        train_time = max(total - self._fit_excluded, 1e-9)
        self.performance = {
            "total_time_s": total,
            "train_time_s": train_time,
            "epochs": self._epochs,
            "steps": trainer.global_step - self._start_step,
            "batches": self._batches,
            "batch_time_ms_avg": 1000.0 * self._batch_sum / self._batches,
            "batch_time_ms_min": 1000.0 * self._batch_min,
            "batch_time_ms_max": 1000.0 * self._batch_max,
            "samples_per_s": self._samples * trainer.world_size / train_time,
            **{f"final/{label}": value for label, value in self._last_fields.items()},
        }
