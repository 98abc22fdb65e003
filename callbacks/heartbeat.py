"""Heartbeat: a status line and throughput metrics every N optimizer steps, plus per-rank liveness files.

Timing uses host clocks only; the one device read per interval is the loss (or the chosen `fields`) for
the status line (rank 0). The data-wait share is the main process's time inside the train loader's
`next()` (VisionCore's loaders count it as `fetch_seconds`); for a loader that does not count it, the
time between one batch's end and the next one's start, which also holds the loop's own work (other
callbacks' hooks, logging, learning-rate schedulers).
On a GPU the per-batch split is approximate (kernels run asynchronously) but interval totals are exact
because the loss read waits for the interval's work.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.trainer.states import TrainerFn

from callbacks.step_readings import (
    batch_size_of,
    check_fields,
    fetch_seconds,
    peak_memory_mb,
    read_fields,
    read_loss,
)

log = logging.getLogger(__name__)

_REPORT_KEYS = ("step", "ms_per_batch", "samples_per_s", "data_wait_share", "peak_mem_mb")


class Heartbeat(Callback):
    """Every `every_n_steps` optimizer steps: one status line and `perf/*` metrics (rank 0), a liveness beat.

    Each rank rewrites `liveness_dir/rank_{r}.alive` (default `<default_root_dir>/heartbeat`) every interval
    and at least every min(stall_seconds/4, 30 s); rank 0 warns about any rank whose file is older than
    `stall_seconds`, from the loop and from a watchdog thread (which still reports when every rank is
    blocked in a collective waiting for a hung one).

    `fields` (label -> metric key, e.g. `{G_Loss: train/g_loss, D_Acc: train/d_acc}`) replaces the loss in
    the status line with those logged metrics' latest values:
    `heartbeat step=120 G_Loss=2.34 D_Acc=0.52 | ms/batch=42.3 samples/s=... data-wait=...% peak_mem=...MB`.
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        liveness_dir: str | os.PathLike | None = None,
        stall_seconds: float = 300.0,
        watchdog: bool = True,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"Heartbeat: every_n_steps must be >= 1, got {every_n_steps}.")
        if stall_seconds <= 0:
            raise ValueError(f"Heartbeat: stall_seconds must be > 0, got {stall_seconds}.")
        self.every_n_steps = int(every_n_steps)
        self.liveness_dir = Path(liveness_dir) if liveness_dir is not None else None
        self._dir: Path | None = self.liveness_dir
        self.stall_seconds = float(stall_seconds)
        self.watchdog = watchdog
        self.fields = check_fields(fields, "Heartbeat (callbacks.heartbeat.fields)", _REPORT_KEYS)
        self.last_report: dict[str, float] = {}
        self.stale_ranks: set[int] = set()
        self._rank = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._val_start: float | None = None
        self._last_beat = -float("inf")
        self._start_interval(time.perf_counter())

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for spawn-based launchers (`trainer.strategy=ddp_spawn`): the lock, the stop event and
        the watchdog thread belong to this process and are made afresh in the other."""
        state = self.__dict__.copy()
        for name in ("_lock", "_stop", "_thread"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    # ---------------------------------------------------------------- timing
    def _start_interval(self, now: float, fetched: float | None = None) -> None:
        self._interval_start = now
        self._fetched_at_start = fetched
        self._last_batch_end: float | None = None
        self._wait = 0.0
        self._excluded = 0.0
        self._batches = 0
        self._samples = 0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._dir = self.liveness_dir or Path(trainer.default_root_dir) / "heartbeat"

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rank = trainer.global_rank
        assert self._dir is not None
        self._dir.mkdir(parents=True, exist_ok=True)
        if trainer.is_global_zero:  # files left by an earlier run with more processes
            for path in self._dir.glob("rank_*.alive"):
                rank = _rank_of(path)
                if rank is not None and rank >= trainer.world_size:
                    path.unlink(missing_ok=True)
        self._beat(trainer.global_step)
        self._next_report = (trainer.global_step // self.every_n_steps + 1) * self.every_n_steps
        self._start_interval(time.perf_counter(), fetch_seconds(trainer))
        if trainer.is_global_zero and self.watchdog:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="heartbeat-watchdog", daemon=True)
            self._thread.start()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        previous = self._last_batch_end if self._last_batch_end is not None else self._interval_start
        self._wait += max(now - previous, 0.0)
        self._batches += 1
        self._samples += batch_size_of(batch) or 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step < self._next_report:
            self._last_batch_end = time.perf_counter()
            self._maybe_beat(trainer)
            return
        if not trainer.is_global_zero:  # only rank 0 prints: the other ranks skip the device read
            values = dict.fromkeys(self.fields or ("loss",), math.nan)
        elif self.fields:
            values = read_fields(trainer.callback_metrics, self.fields, "_step")
        else:
            values = {"loss": read_loss(trainer, outputs)}
        now = time.perf_counter()  # after the read, so the interval includes the device catching up
        self._report(trainer, pl_module, values, now)
        self._beat(trainer.global_step)
        if trainer.is_global_zero:
            self.check_liveness(include_self=False)
        self._next_report = (trainer.global_step // self.every_n_steps + 1) * self.every_n_steps
        self._start_interval(time.perf_counter(), fetch_seconds(trainer))

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val_start = time.perf_counter()

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._maybe_beat(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._val_start is None:
            return
        paused = time.perf_counter() - self._val_start  # validation is neither step time nor data wait
        self._val_start = None
        self._excluded += paused
        if self._last_batch_end is not None:
            self._last_batch_end += paused
        else:
            self._interval_start += paused

    def _report(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, values: dict[str, float], now: float
    ) -> None:
        elapsed = max(now - self._interval_start - self._excluded, 1e-9)
        batches = max(self._batches, 1)
        fetched = fetch_seconds(trainer)
        wait = self._wait  # a reloaded loader restarts its count: fall back to the time between batches
        if fetched is not None and self._fetched_at_start is not None and fetched >= self._fetched_at_start:
            wait = fetched - self._fetched_at_start
        self.last_report = {
            "step": float(trainer.global_step),
            **values,
            "ms_per_batch": 1000.0 * elapsed / batches,
            # rank 0's rate times the world size: ranks step together and DistributedSampler evens batches
            "samples_per_s": self._samples * trainer.world_size / elapsed,
            "data_wait_share": min(wait / elapsed, 1.0),
            "peak_mem_mb": peak_memory_mb(pl_module.device),
        }
        if not trainer.is_global_zero:
            return
        r = self.last_report
        if self.fields:  # the chosen metrics, then the throughput
            shown = " ".join(f"{label}={r[label]:.4g}" for label in self.fields) + " |"
        else:
            shown = f"loss={r['loss']:.4g}"
        log.info(
            "heartbeat step=%d %s ms/batch=%.1f samples/s=%.1f data-wait=%.1f%% peak_mem=%.0fMB",
            trainer.global_step,
            shown,
            r["ms_per_batch"],
            r["samples_per_s"],
            100.0 * r["data_wait_share"],
            r["peak_mem_mb"],
        )
        metrics = {
            f"perf/{key}": r[key]
            for key in ("ms_per_batch", "samples_per_s", "data_wait_share", "peak_mem_mb")
        }
        step = getattr(
            trainer.fit_loop.epoch_loop, "_batches_that_stepped", trainer.global_step
        )  # Lightning's x-axis
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    # -------------------------------------------------------------- liveness
    def _maybe_beat(self, trainer: pl.Trainer) -> None:
        """Beat between reports too when they are far apart, so slow intervals do not look like stalls."""
        if trainer.state.fn != TrainerFn.FITTING or self._dir is None:
            return
        if time.monotonic() - self._last_beat >= min(self.stall_seconds / 4.0, 30.0):
            self._beat(trainer.global_step)

    def _beat(self, step: int) -> None:
        """Atomically rewrite this rank's liveness file (its mtime is the beat)."""
        assert self._dir is not None
        self._last_beat = time.monotonic()
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._dir / f"rank_{self._rank}.alive"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        payload = {
            "rank": self._rank,
            "step": int(step),
            "time": time.time(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, path)

    def check_liveness(self, include_self: bool = False) -> list[int]:
        """Warn (once per stall) about ranks whose liveness file is older than `stall_seconds`; return them."""
        if self._dir is None or not self._dir.is_dir():
            return []
        now = time.time()
        stale: dict[int, tuple[float, Any]] = {}
        for path in self._dir.glob("rank_*.alive"):
            rank = _rank_of(path)
            if rank is None or (rank == self._rank and not include_self):
                continue
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if age > self.stall_seconds:
                stale[rank] = (age, _read_step(path))
        with self._lock:
            for rank, (age, step) in sorted(stale.items()):
                if rank not in self.stale_ranks:
                    log.warning(
                        "Heartbeat: rank %d has not beaten for %.0f s (last at step %s; stall_seconds=%g): it may be "
                        "hung (data loading, a collective, I/O) or dead. Liveness files: %s",
                        rank,
                        age,
                        step,
                        self.stall_seconds,
                        self._dir,
                    )
            checked = {r for r in self.stale_ranks if include_self or r != self._rank}
            self.stale_ranks = (self.stale_ranks - checked) | set(stale)
        return sorted(stale)

    def _watch(self) -> None:
        period = min(max(self.stall_seconds / 4.0, 0.05), 60.0)
        while not self._stop.wait(period):
            try:
                self.check_liveness(include_self=True)
            except OSError as error:  # a flaky shared filesystem must not kill the watchdog
                log.debug("Heartbeat watchdog: %s", error)

    def _stop_watchdog(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop_watchdog()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._stop_watchdog()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._stop_watchdog()


def _rank_of(path: Path) -> int | None:
    try:
        return int(path.stem.removeprefix("rank_"))
    except ValueError:
        return None


def _read_step(path: Path) -> Any:
    try:
        return json.loads(path.read_text()).get("step", "?")
    except (OSError, ValueError):
        return "?"
