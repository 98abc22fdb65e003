"""`summary.json` for one run and `multirun_summary.csv` for a sweep: what a person reads first."""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf

from training.checkpoints import git_revision
from training.run_dir import global_rank

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
        if global_rank() != 0:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        tmp.replace(self.path)


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
    """After a sweep, one CSV row per job: its overrides, status, metrics and throughput."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = []
        for summary in sorted(sweep_dir.glob("*/summary.json"), key=lambda p: _job_number(p.parent.name)):
            data = json.loads(summary.read_text())
            overrides_file = summary.parent / ".hydra" / "overrides.yaml"
            overrides = OmegaConf.load(overrides_file) if overrides_file.exists() else []
            row = {
                "job": summary.parent.name,
                "overrides": " ".join(overrides),
                "status": data.get("status"),
                "samples_per_s": (data.get("performance") or {}).get("samples_per_s"),
                "wall_time_s": data.get("wall_time_s"),
                "params": data.get("params"),
            }
            row.update(data.get("metrics", {}))
            rows.append(row)
        if not rows:
            log.warning("No job summaries found under %s", sweep_dir)
            return
        columns = list(dict.fromkeys(key for row in rows for key in row))
        out = sweep_dir / "multirun_summary.csv"
        with out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        log.info("Sweep summary (%d jobs): %s", len(rows), out)


def _job_number(name: str) -> int:
    return int(name) if name.isdigit() else 1 << 30
