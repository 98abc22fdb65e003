"""Sweeps that survive: a failed job does not end the sweep, and re-running the command continues it.

- The sweep directory (`hydra.sweep.dir`, see conf/hydra/default.yaml) is named by `sweep_id`: `run_name`
  when given, else `$VISIONCORE_RUN_ID` or the launcher's job id (SLURM), else a hash of the command
  line's overrides. The same command therefore finds the same directory again.
- Each job's directory (`hydra.sweep.subdir`) is the one that already holds a run with the same
  overrides, else the job number (or the next free number when an earlier launch used it for
  another job, as Optuna's trials do): `job_subdir`.
- In that directory `training.run` skips a job whose run finished (returning its recorded metric to
  the sweeper) and continues an unfinished one from its newest valid checkpoint (`prepare_job`).
- A job that raises is recorded as failed (summary.json `status: failed` + `error`) and returns a
  `JobFailed`, which Optuna records as a failed trial; the sweep goes on.
- While a job runs, the process looks like a single run of that job (`single_run_command`), so the
  ranks that Lightning's DDP launcher starts by re-running the command run this job, not the sweep.
- `ResumableSweep` (a Hydra callback) creates the sweep directory before the sweeper opens its Optuna
  storage there (`hydra.sweeper.storage`, conf/hparams_search/), and on a re-run marks the trials the
  killed sweeper left running as failed, queues their parameters again (so they continue in their
  directories) and runs only the trials still missing from `hydra.sweeper.n_trials`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from training.launch import RUN_ID_ENV, global_rank, launcher_run_id
from training.run_state import Run

log = logging.getLogger(__name__)
SWEEP_ID_ENV = "VISIONCORE_SWEEP_ID"
INTERRUPTED = "visioncore:interrupted"
SWEEP_JOB_ENV = "VISIONCORE_SWEEP_JOB"  # set while a sweep job runs: the ranks Lightning starts inherit it
FOLLOWER_WAIT_S = 300.0  # how long a rank > 0 waits for rank 0 to create the job's directory


# ------------------------------------------------------------------------------------ directories
def sweep_id(run_name: str | None, overrides: Any) -> str:
    """The sweep directory's name: run_name, $VISIONCORE_RUN_ID, the SLURM job, else a hash of the overrides.

    Computed once by the sweeping process (from the command line's overrides) and kept in
    $VISIONCORE_SWEEP_ID, so every job, here or on a cluster node, resolves the same directory.
    """
    cached = os.environ.get(SWEEP_ID_ENV)
    if cached:
        return cached
    listed = sorted(str(o) for o in (overrides or []))
    digest = hashlib.sha1(json.dumps(listed).encode()).hexdigest()[:10]
    value = (
        str(run_name) if run_name else os.environ.get(RUN_ID_ENV) or launcher_run_id() or f"sweep_{digest}"
    )
    os.environ[SWEEP_ID_ENV] = value
    return value


_subdirs: dict[tuple[str, str, tuple[str, ...]], str] = {}


def job_subdir(sweep_dir: str, num: Any, overrides: Any) -> str:
    """The job's directory name in `sweep_dir`: the one holding the same overrides, else a newly claimed number.

    Where every rank runs the job itself (SLURM tasks of one job, torchrun), only rank 0 claims; the
    others wait for its directory, so all ranks of a job use the same one.
    """
    wanted = tuple(sorted(str(o) for o in (overrides or [])))
    key = (str(sweep_dir), str(num), wanted)
    if key not in _subdirs:
        root = Path(sweep_dir)
        match = _matching_dir(root, wanted, wait_s=0 if global_rank() == 0 else FOLLOWER_WAIT_S)
        if match is None and global_rank() != 0:
            log.warning("Rank %d found no directory of rank 0 for job #%s; using %s", global_rank(), num, num)
            return str(num)
        _subdirs[key] = match.name if match is not None else _claim(root, int(num))
        if _subdirs[key] != str(num):
            log.info(
                "Job #%s runs in %s (%s)",
                num,
                root / _subdirs[key],
                "its earlier run" if match else "next free",
            )
    return _subdirs[key]


def _matching_dir(root: Path, wanted: tuple[str, ...], wait_s: float) -> Path | None:
    deadline = time.monotonic() + wait_s
    while True:
        match = next((d for d in _job_dirs(root) if _overrides_of(d) == wanted), None)
        if match is not None or time.monotonic() >= deadline:
            return match
        time.sleep(0.2)


def _job_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted((d for d in root.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))


def _overrides_of(job_dir: Path) -> tuple[str, ...] | None:
    path = job_dir / ".hydra" / "overrides.yaml"
    try:
        return tuple(sorted(str(o) for o in OmegaConf.load(path)))
    except (OSError, ValueError, TypeError):
        return None


def _claim(root: Path, num: int) -> str:
    """Create `root/num`, or the first free number after the existing ones (atomic: parallel jobs differ)."""
    root.mkdir(parents=True, exist_ok=True)
    candidate = num
    while True:
        try:
            (root / str(candidate)).mkdir()
            return str(candidate)
        except FileExistsError:
            candidate = max([candidate, *(int(d.name) for d in _job_dirs(root))]) + 1


# ------------------------------------------------------------------------------------------- jobs
def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def job_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


class JobFailed:
    """What a failed job returns to the sweeper: not a number, so Optuna records the trial as failed."""

    def __init__(self, error: str) -> None:
        self.error = error

    def __float__(self) -> float:
        raise ValueError(self.error)

    def __str__(self) -> str:
        return f"job failed: {self.error}"

    __repr__ = __str__


class Finished:
    """A job whose run already finished: `value` is its recorded `optimized_metric`."""

    def __init__(self, value: float | None) -> None:
        self.value = value


def prepare_job(cfg: DictConfig) -> Finished | None:
    """Before a sweep job runs in its directory: skip it if its run finished, else continue what is there."""
    run = Run(job_dir())
    previous = run.summary
    if run.finished and previous.get("task") == cfg.task:
        metric = cfg.get("optimized_metric")
        value = (previous.get("metrics") or {}).get(metric) if metric else None
        log.info(
            "Skipping job %s: its run already finished (%s, %s=%s). For a fresh sweep pass run_name=NEW.",
            run.dir.name,
            run.summary_path,
            metric,
            value,
        )
        return Finished(float(value) if value is not None else None)
    if cfg.task == "fit" and not cfg.get("resume") and not cfg.get("ckpt_path") and run.has_checkpoint():
        log.info(
            "Job %s: continuing the unfinished run in %s from its newest valid checkpoint (resume=auto).",
            run.dir.name,
            run.dir,
        )
        with open_dict(cfg), read_write(cfg):
            cfg.resume = "auto"
    return None


@contextmanager
def single_run_command(cfg: DictConfig) -> Iterator[None]:
    """While a sweep job runs: the command line and `hydra.run.dir` of this one job as a single run.

    Lightning's DDP launcher (`trainer=ddp|ddp_cpu`) starts the other ranks by re-running this process's
    command with `hydra.run.dir=<HydraConfig run.dir>`. In a sweep that command would start the whole
    sweep again (and a second Optuna client of the study); with this, they run exactly this job, in its
    directory, continuing it when this rank does. Afterwards the environment, process group and rank
    processes of the job are cleared, so the next job starts its own ranks.
    """
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    overrides = [str(o) for o in hydra_cfg.overrides.task]
    extra = ["hydra.mode=RUN"]  # hparams_search configs set hydra.mode=MULTIRUN
    if cfg.get("resume") == "auto" and not any(o.lstrip("+~").startswith("resume=") for o in overrides):
        extra.append("resume=auto")  # prepare_job continues this job
    argv = sys.argv
    run_dir = OmegaConf.to_container(hydra_cfg.run, resolve=False)["dir"]  # as it was, unresolved
    environ = dict(os.environ)  # Lightning's launcher leaves LOCAL_RANK, MASTER_PORT, ... behind
    sys.argv = [argv[0], *overrides, *extra]
    os.environ[SWEEP_JOB_ENV] = str(hydra_cfg.runtime.output_dir)
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        sys.argv = argv
        with read_write(hydra_cfg):
            hydra_cfg.run.dir = run_dir
        _end_job_processes()
        os.environ.clear()
        os.environ.update(environ)


def _end_job_processes() -> None:
    """After a job: no process group, watcher thread or rank process of it is left for the next job."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    for thread in threading.enumerate():
        if thread.name != "child-process-observer":  # Lightning's watcher of the ranks it started
            continue
        thread._finished = True  # type: ignore[attr-defined]
        for process in getattr(thread, "_child_processes", []):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.terminate()


# --------------------------------------------------------------------------------- the callback
class ResumableSweep(HydraCallback):
    """Prepares the sweep directory and, for Optuna sweeps with a storage, continues the study."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if _job_dirs(sweep_dir):
            log.info(
                "Sweep directory %s exists: continuing that sweep (finished jobs are skipped, unfinished ones "
                "resume). For a fresh sweep pass run_name=NEW.",
                sweep_dir,
            )
        else:
            log.info("Sweep directory: %s", sweep_dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)  # the Optuna storage file lives here
        sweeper = config.hydra.sweeper
        if "optuna" in str(sweeper.get("_target_", "")).lower() and sweeper.get("storage"):
            _continue_study(config)


def _continue_study(config: DictConfig) -> None:
    import optuna
    from optuna.trial import TrialState

    sweeper = config.hydra.sweeper
    name = sweeper.get("study_name")
    if not name:
        return
    try:
        study = optuna.load_study(study_name=str(name), storage=str(sweeper.storage))
    except KeyError:  # a new study
        return
    trials = study.get_trials(deepcopy=False)
    interrupted = [t for t in trials if t.state == TrialState.RUNNING]
    for trial in interrupted:
        # The sweeper that ran it was killed: fail it, and run the same parameters again (the new trial
        # lands in its directory and continues from its checkpoint).
        study._storage.set_trial_system_attr(trial._trial_id, INTERRUPTED, True)
        study._storage.set_trial_state(trial._trial_id, TrialState.FAIL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.enqueue_trial(dict(trial.params))
    done = [
        t
        for t in trials
        if t.state.is_finished() and not t.system_attrs.get(INTERRUPTED) and t not in interrupted
    ]
    total = int(sweeper.n_trials)
    remaining = max(total - len(done), 0)
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.sweeper.n_trials = remaining
        sampler = config.hydra.sweeper.get("sampler")
        if sampler is not None and sampler.get("seed") is not None:
            # New suggestions, not a replay of the first launch's random start-up trials.
            sampler.seed = int(sampler.seed) + len(trials)
    log.info(
        "Continuing Optuna study %r (%s): %d trials done, %d interrupted (queued again), %d to run for n_trials=%d.",
        name,
        sweeper.storage,
        len(done),
        len(interrupted),
        remaining,
        total,
    )
