"""One object owns a run: its directory, status, attempts, `summary.json`, and its checkpoints.

`Run.for_launch` chooses the directory of this launch (Hydra's `hydra.run.dir` resolver calls it, so
every rank and every later question in the process gets the same answer); `Run(path)` reads a run that
exists (the design pipeline, sweeps and `resume=auto` ask it about status and checkpoints). Summaries are
written by rank 0 only, atomically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import DictConfig, OmegaConf

from training.launch import global_rank, run_id

log = logging.getLogger(__name__)

FINISHED = "finished"


class Run:
    """The run living in `dir`: what it recorded, and (for the running launch) what it records next."""

    # Per process: the directory each launch chose, and the summaries this launch wrote.
    _chosen: ClassVar[dict[tuple, Path]] = {}
    _written: ClassVar[set[Path]] = set()

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)
        self.data: dict[str, Any] = {}  # the summary this launch is writing (start/update/finish)

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r})"

    # -- choosing the directory of a launch --------------------------------------------------------------

    @classmethod
    def for_launch(
        cls,
        log_dir: str,
        name: str,
        run_name: str | None = None,
        resume: str | None = None,
        task: str = "fit",
        ckpt_path: str | None = None,
    ) -> Run:
        """This launch's run: a named one, the newest unfinished one (`resume=auto`), a new one, or for an
        evaluation of a checkpoint a directory beside the run that made it. Stable within a process."""
        key = (log_dir, name, run_name, resume, task, ckpt_path)
        if key not in cls._chosen:
            cls._chosen[key] = _choose(Path(log_dir), name, run_name, resume, task, ckpt_path)
        return cls(cls._chosen[key])

    @classmethod
    def new_launch(cls) -> None:
        """Forget the previous launch in this process (in-process runs, sweep jobs, tests): the next one
        chooses its directory afresh and owns only the summaries it writes itself."""
        cls._chosen.clear()
        cls._written.clear()

    @classmethod
    def newest_unfinished(cls, runs_dir: Path) -> Run | None:
        """The most recently modified run that did not finish and has a checkpoint to continue from (an
        attempt refused before its first checkpoint, e.g. for a bad value, is not a run to resume)."""
        if not runs_dir.is_dir():
            return None
        runs = [cls(d) for d in runs_dir.iterdir() if d.is_dir()]
        candidates = [run for run in runs if not run.finished and run.has_checkpoint()]
        return max(candidates, key=lambda run: run.dir.stat().st_mtime, default=None)

    # -- reading what a run recorded ----------------------------------------------------------------------

    @property
    def summary_path(self) -> Path:
        return self.dir / "summary.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def summary(self) -> dict[str, Any]:
        """`summary.json` as recorded ({} when there is none or it cannot be read)."""
        try:
            return json.loads(self.summary_path.read_text()) if self.summary_path.is_file() else {}
        except (OSError, json.JSONDecodeError):
            return {}

    @property
    def status(self) -> str | None:
        return self.summary.get("status")

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    def has_checkpoint(self) -> bool:
        return any(self.checkpoint_dir.glob("*.ckpt"))

    def resume_checkpoint(self) -> Path | None:
        """The newest valid checkpoint to continue from (validity from each file's sidecar)."""
        from training.toolkit.checkpoints import newest_valid_checkpoint  # torch: not needed to choose a dir

        return newest_valid_checkpoint(self.checkpoint_dir)

    def result_checkpoint(self) -> str | None:
        """The checkpoint a finished run reported: its best, or its newest state when it monitored nothing."""
        summary = self.summary
        if summary.get("status") != FINISHED:
            return None
        return summary.get("best_checkpoint") or summary.get("last_checkpoint")

    # -- recording (rank 0 writes) ------------------------------------------------------------------------

    def start(self, cfg: DictConfig) -> None:
        """A new attempt: the run's config and the first facts of its summary."""
        from training.toolkit.checkpoints import git_revision

        previous = self.summary
        self.data = {
            "experiment": cfg.get("name"),
            "task": cfg.task,
            "run_dir": str(self.dir),
            "git_revision": git_revision(),
            "started": previous.get("started", time.strftime("%Y-%m-%dT%H:%M:%S")),
            "attempts": previous.get("attempts", 0) + 1,
        }
        if global_rank() == 0:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    def update(self, **facts: Any) -> None:
        self.data.update(facts)
        self._write(self.data)

    def finish(
        self, status: str, trainer: Any = None, metrics: dict[str, float] | None = None, **facts: Any
    ) -> None:
        self.data.update(status=status, finished=time.strftime("%Y-%m-%dT%H:%M:%S"), **facts)
        if metrics is not None:
            self.data["metrics"] = {k: float(v) for k, v in sorted(metrics.items())}
        if trainer is not None:
            self.data.update(_trainer_facts(trainer))
        self._write(self.data)
        log.info("Run %s: %s -> %s", status, self.dir, self.summary_path)

    def record_failure(self, error: str, cfg: DictConfig | None = None, sweep_job: bool = False) -> None:
        """Mark the run failed in its summary (keeping what it had recorded), with the error.

        An existing summary is changed only when this launch wrote it, or for a sweep's job (its directory
        belongs to the sweep): a launch refused for an earlier run's directory (e.g. without resume=auto)
        must not mark that run failed.
        """
        path = self.summary_path
        if global_rank() != 0 or (path.is_file() and not sweep_job and path.resolve() not in Run._written):
            return
        data = self.summary
        if cfg is not None:
            for key, name in (("experiment", "name"), ("task", "task")):
                with contextlib.suppress(
                    Exception
                ):  # a broken config is what failed; record what can be read
                    data.setdefault(key, cfg.get(name))
        data.setdefault("run_dir", str(self.dir))
        data.update(status="failed", error=error, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        self._write(data, own=False)

    def _write(self, data: dict[str, Any], own: bool = True) -> None:
        if global_rank() != 0:
            return
        write_json(self.summary_path, data)
        if own:
            Run._written.add(self.summary_path.resolve())


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` atomically with `data` as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def _choose(
    log_dir: Path, name: str, run_name: str | None, resume: str | None, task: str, ckpt_path: str | None
) -> Path:
    if task != "fit" and ckpt_path:
        # Evaluation of a checkpoint lands beside the run that made it.
        ckpt = Path(ckpt_path).expanduser().resolve()
        home = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else log_dir / "eval"
        return home / f"{task}_{run_id()}"
    runs_dir = log_dir / name / "runs"
    if run_name:
        return runs_dir / str(run_name)
    if resume == "auto":
        found = Run.newest_unfinished(runs_dir)
        if found is not None:
            return found.dir
    elif resume not in (None, "never"):
        raise ValueError(f"resume={resume!r} is not understood: use resume=auto, or ckpt_path=PATH.")
    return runs_dir / run_id()


def _trainer_facts(trainer: Any) -> dict[str, Any]:
    """What the trainer knows at the end: world size, steps, the best and last checkpoints, throughput."""
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
    for reporter in [*trainer.callbacks, getattr(trainer, "lightning_module", None)]:
        # Callbacks and the LightningModule that report into the summary say so through `summary_facts()`
        # (LatestCheckpoint, EpochHeartbeat; a generative model's FID/KID feature extractor): the runner does
        # not need to know their classes.
        report = getattr(reporter, "summary_facts", None)
        if callable(report):
            facts.update(report())
    return facts
