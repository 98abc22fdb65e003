"""`summary.json` for one run and `multirun_summary.csv` for a sweep: what a person reads first."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf

from training.run_dir import global_rank
from training.toolkit.checkpoints import git_revision

log = logging.getLogger(__name__)


class RunSummary:
    """Accumulates the run's facts and rewrites `summary.json` (rank 0 only) as they change."""

    def __init__(self, run_dir: Path, cfg: DictConfig) -> None:
        self.path = run_dir / "summary.json"
        previous = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.data: dict[str, Any] = {
            "experiment": cfg.get("name"),
            "task": cfg.task,
            "run_dir": str(run_dir),
            "git_revision": git_revision(),
            "started": previous.get("started", time.strftime("%Y-%m-%dT%H:%M:%S")),
            "attempts": previous.get("attempts", 0) + 1,
        }
        if global_rank() == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    def update(self, **facts: Any) -> None:
        self.data.update(facts)
        self._write()

    def finish(
        self, status: str, trainer: Any = None, metrics: dict[str, float] | None = None, **facts: Any
    ) -> None:
        self.data.update(status=status, finished=time.strftime("%Y-%m-%dT%H:%M:%S"), **facts)
        if metrics is not None:
            self.data["metrics"] = {k: float(v) for k, v in sorted(metrics.items())}
        if trainer is not None:
            self.data.update(_trainer_facts(trainer))
        self._write()
        log.info("Run %s: %s -> %s", status, self.data.get("run_dir"), self.path)

    def _write(self) -> None:
        if global_rank() == 0:
            _write_json(self.path, self.data)
            _WRITTEN_BY_THIS_LAUNCH.add(self.path.resolve())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


_WRITTEN_BY_THIS_LAUNCH: set[Path] = set()  # summary.json files this launch's RunSummary wrote


def new_launch() -> None:
    """Forget which summaries the previous launch in this process wrote (in-process runs, sweep jobs)."""
    _WRITTEN_BY_THIS_LAUNCH.clear()


def record_failure(run_dir: Path, error: str, cfg: DictConfig | None = None, sweep_job: bool = False) -> None:
    """Mark the run failed in its `summary.json` (keeping what it had recorded), with the error.

    An existing summary.json is changed only when this launch wrote it, or for a sweep's job (its
    directory belongs to the sweep): a launch refused for an earlier run's directory (e.g. without
    resume=auto) must not mark that run failed.
    """
    path = run_dir / "summary.json"
    if global_rank() != 0 or (
        path.is_file() and not sweep_job and path.resolve() not in _WRITTEN_BY_THIS_LAUNCH
    ):
        return
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        data = {}
    if cfg is not None:
        for key, name in (("experiment", "name"), ("task", "task")):
            with contextlib.suppress(Exception):  # a broken config is what failed; record what can be read
                data.setdefault(key, cfg.get(name))
    data.setdefault("run_dir", str(run_dir))
    data.update(status="failed", error=error, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    _write_json(path, data)


def _trainer_facts(trainer: Any) -> dict[str, Any]:
    from callbacks.epoch_heartbeat import EpochHeartbeat
    from callbacks.latest_checkpoint import LatestCheckpoint

    facts: dict[str, Any] = {
        "world_size": trainer.world_size,
        "global_step": trainer.global_step,
        "epochs": trainer.current_epoch,
    }
    best = trainer.checkpoint_callback
    if best is not None and getattr(best, "best_model_path", ""):
        score = best.best_model_score
        facts.update(
            best_checkpoint=best.best_model_path,
            best_score=float(score) if score is not None else None,
            monitor=best.monitor,
        )
    for callback in trainer.callbacks:
        if isinstance(callback, LatestCheckpoint) and callback.last_path.exists():
            facts["last_checkpoint"] = str(callback.last_path)
        if isinstance(callback, EpochHeartbeat) and getattr(callback, "performance", None):
            facts["performance"] = callback.performance
    return facts


class MultirunSummary(HydraCallback):
    """One CSV row per job of a sweep (overrides, status, error, metrics, throughput), rewritten after each
    job, so a sweep stopped midway still has its table, and logged at the end with the failed jobs."""

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        from hydra.types import RunMode

        if config.hydra.mode == RunMode.MULTIRUN:
            write_sweep_table(Path(str(config.hydra.sweep.dir)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        rows = write_sweep_table(sweep_dir)
        if not rows:
            log.warning("No job summaries found under %s", sweep_dir)
            return
        failed = [row for row in rows if row["status"] == "failed"]
        log.info("Sweep summary (%d jobs, %d failed): %s", len(rows), len(failed), sweep_dir / SWEEP_TABLE)
        for row in failed:
            log.warning("Job %s (%s) failed: %s", row["job"], row["overrides"], row["error"])
        if len(failed) == len(rows):
            log.error("Every job of the sweep failed; see %s.", sweep_dir / SWEEP_TABLE)
            raise SystemExit(1)


SWEEP_TABLE = "multirun_summary.csv"


def write_sweep_table(sweep_dir: Path) -> list[dict[str, Any]]:
    """Write `multirun_summary.csv` from the jobs' summary.json files (atomically); returns the rows."""
    rows = []
    for summary in sorted(sweep_dir.glob("*/summary.json"), key=lambda p: _job_number(p.parent.name)):
        try:
            data = json.loads(summary.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        overrides_file = summary.parent / ".hydra" / "overrides.yaml"
        overrides = OmegaConf.load(overrides_file) if overrides_file.exists() else []
        row = {
            "job": summary.parent.name,
            "overrides": " ".join(overrides),
            "status": data.get("status"),
            "error": _one_line(data.get("error")),
            "samples_per_s": (data.get("performance") or {}).get("samples_per_s"),
            "wall_time_s": data.get("wall_time_s"),
            "params": data.get("params"),
        }
        row.update(data.get("metrics", {}))
        rows.append(row)
    if not rows:
        return rows
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = sweep_dir / SWEEP_TABLE
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    return rows


def _one_line(error: Any, limit: int = 500) -> str | None:
    if not error:
        return None
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _job_number(name: str) -> int:
    return int(name) if name.isdigit() else 1 << 30
