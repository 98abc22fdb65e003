"""Preemption: SIGTERM, SIGUSR1 or Ctrl-C save a resumable checkpoint and end the run cleanly.

Lightning already turns SIGTERM into `trainer.received_sigterm` and stops after the batch; this
adds SIGUSR1 (SLURM's pre-timeout signal) and a first Ctrl-C (a second one interrupts at once),
saves through `LatestCheckpoint` at the next batch boundary, and requeues the SLURM job.

With several processes the ranks must stop at the same batch, so they agree by an all-reduce of the
flag; that collective (and on GPUs the host read of its result) is done every `sync_every_n_batches`
batches, not every batch: on 2 CPU processes it cost as much as cnn_digits' whole step. A preempted
multi-process run therefore stops within that many batches of the signal.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from types import FrameType

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from callbacks.latest_checkpoint import LatestCheckpoint

log = logging.getLogger(__name__)


class Preemption(Callback):
    """Checkpoint-and-stop on a signal; `stop_reason` tells the run model what happened (read by duck typing: the runner names no callback)."""

    def __init__(self, requeue_on_slurm: bool = True, sync_every_n_batches: int = 10) -> None:
        if sync_every_n_batches < 1:
            raise ValueError(
                f"Preemption: sync_every_n_batches must be >= 1, got {sync_every_n_batches} "
                "(callbacks.preemption.sync_every_n_batches)."
            )
        self.requeue_on_slurm = requeue_on_slurm
        self.sync_every_n_batches = int(sync_every_n_batches)
        self._batches = 0
        self.stop_reason: str | None = None
        self._signal: int | None = None
        self._previous: dict[int, object] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self._signal == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self._signal = signum

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGUSR1, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handler)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: object) -> None:
        local = self._signal is not None or trainer.received_sigterm
        self._batches += 1
        if trainer.world_size > 1:
            if self._batches % self.sync_every_n_batches:
                return  # every rank counts the same batches, so all meet at the same collective
            local = trainer.strategy.reduce_boolean_decision(local, all=False)
        if not local:
            return
        name = signal.Signals(self._signal).name if self._signal else "SIGTERM"
        self.stop_reason = f"preempted by {name}"
        latest = next((cb for cb in trainer.callbacks if isinstance(cb, LatestCheckpoint)), None)
        if latest is None:
            raise RuntimeError(
                "Preemption needs a LatestCheckpoint callback to save into (callbacks.latest_checkpoint)."
            )
        path = latest.save(trainer)
        log.warning(
            "%s at step %d: saved %s; continue with resume=auto", self.stop_reason, trainer.global_step, path
        )
        trainer.should_stop = True
        if trainer.is_global_zero and self.requeue_on_slurm and "SLURM_JOB_ID" in os.environ:
            job = os.environ.get("SLURM_ARRAY_JOB_ID")
            job = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job else os.environ["SLURM_JOB_ID"]
            subprocess.run(["scontrol", "requeue", job], check=False)
