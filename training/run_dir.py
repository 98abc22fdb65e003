"""Where a run lives: one directory per run, the same for every rank, and `resume=auto`.

The directory name must not come from a per-process clock: under `torchrun`, SLURM or
Lightning's own DDP launcher every rank composes the config itself. The id below is taken from
the launcher's environment when there is one, and exported so child processes inherit it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

RUN_ID_ENV = "VISIONCORE_RUN_ID"
FINISHED = "finished"


def _launcher_run_id() -> str | None:
    """An id every rank of one launch agrees on, or None outside a multi-process launcher."""
    torchelastic = os.environ.get("TORCHELASTIC_RUN_ID")
    if torchelastic and torchelastic != "none":
        return torchelastic
    if "SLURM_JOB_ID" in os.environ:
        array = os.environ.get("SLURM_ARRAY_JOB_ID")
        return (
            f"slurm{array}_{os.environ['SLURM_ARRAY_TASK_ID']}"
            if array
            else f"slurm{os.environ['SLURM_JOB_ID']}"
        )
    if torchelastic == "none":
        # Plain `torchrun` without --rdzv-id: the local ranks share the agent process as parent,
        # so its pid and start time (Linux /proc) name the launch.
        agent = os.getppid()
        try:
            started = Path(f"/proc/{agent}/stat").read_text().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            started = "0"
        return f"torchrun_{agent}_{started}"
    return None


def global_rank() -> int:
    """This process's rank from the launcher's environment (torchrun, SLURM, Lightning), before DDP starts."""
    for variable in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if variable in os.environ:
            return int(os.environ[variable])
    return 0


def run_id() -> str:
    """The id of this launch: `$VISIONCORE_RUN_ID`, a launcher's id, or a new timestamp."""
    value = (
        os.environ.get(RUN_ID_ENV)
        or _launcher_run_id()
        or f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{os.urandom(2).hex()}"
    )
    os.environ[RUN_ID_ENV] = value  # children (Lightning's DDP launcher, dataloader workers) inherit it
    return value


def read_status(run_dir: Path) -> str | None:
    summary = run_dir / "summary.json"
    if not summary.is_file():
        return None
    try:
        return json.loads(summary.read_text()).get("status")
    except (OSError, json.JSONDecodeError):
        return None


def newest_unfinished_run(runs_dir: Path) -> Path | None:
    """The most recently modified run directory that did not finish and has a checkpoint to continue from
    (an attempt refused before its first checkpoint, e.g. for a bad value, is not a run to resume)."""
    if not runs_dir.is_dir():
        return None
    candidates = [
        d
        for d in runs_dir.iterdir()
        if d.is_dir() and read_status(d) != FINISHED and any((d / "checkpoints").glob("*.ckpt"))
    ]
    return max(candidates, key=lambda d: d.stat().st_mtime, default=None)


_chosen: dict[tuple, str] = {}


def choose_run_dir(
    log_dir: str,
    name: str,
    run_name: str | None,
    resume: str | None,
    task: str = "fit",
    ckpt_path: str | None = None,
) -> str:
    """The run directory for this launch (Hydra's `hydra.run.dir`); stable within a process."""
    key = (log_dir, name, run_name, resume, task, ckpt_path)
    if key not in _chosen:
        _chosen[key] = _choose(Path(log_dir), name, run_name, resume, task, ckpt_path)
    return _chosen[key]


def _choose(
    log_dir: Path, name: str, run_name: str | None, resume: str | None, task: str, ckpt_path: str | None
) -> str:
    if task != "fit" and ckpt_path:
        # Evaluation of a checkpoint lands beside the run that made it.
        ckpt = Path(ckpt_path).expanduser().resolve()
        home = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else log_dir / "eval"
        return str(home / f"{task}_{run_id()}")
    runs_dir = log_dir / name / "runs"
    if run_name:
        return str(runs_dir / str(run_name))
    if resume == "auto":
        found = newest_unfinished_run(runs_dir)
        if found is not None:
            return str(found)
    elif resume not in (None, "never"):
        raise ValueError(f"resume={resume!r} is not understood: use resume=auto, or ckpt_path=PATH.")
    return str(runs_dir / run_id())


def register_resolvers() -> None:
    """Resolvers used by conf/hydra and conf/logger (safe to call more than once)."""
    if not OmegaConf.has_resolver("vc.run_dir"):
        OmegaConf.register_new_resolver("vc.run_dir", choose_run_dir)
        OmegaConf.register_new_resolver("vc.run_id", run_id)
        OmegaConf.register_new_resolver("vc.stable_id", _stable_id)
        # conf/hydra: sweep directories that a re-run of the same command finds again
        from training.sweep import job_subdir, sweep_id

        OmegaConf.register_new_resolver("vc.sweep_id", sweep_id)
        OmegaConf.register_new_resolver("vc.job_subdir", job_subdir)
        OmegaConf.register_new_resolver("vc.is_tty", lambda: sys.stdout.isatty())
        OmegaConf.register_new_resolver("vc.leaf", lambda path: Path(path).name)
        # The repository root, for files shipped with the code (e.g. conf/v1_datasets), wherever runs live.
        OmegaConf.register_new_resolver("vc.repo_dir", lambda: str(Path(__file__).resolve().parent.parent))
        OmegaConf.register_new_resolver("vc.dataset_fact", _dataset_fact)
        OmegaConf.register_new_resolver("vc.wandb_offline", _wandb_offline)
        OmegaConf.register_new_resolver(
            "vc.rank", lambda: os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))
        )
        OmegaConf.register_new_resolver(
            "vc.local_world_size", lambda: int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        )
        OmegaConf.register_new_resolver(
            "vc.num_nodes",
            lambda: int(os.environ.get("WORLD_SIZE", 1)) // int(os.environ.get("LOCAL_WORLD_SIZE", 1)),
        )


def _dataset_fact(dataset_configs_path: str, key: str) -> Any:
    """A value of a dataset-config folder's parent.yaml (e.g. v1's `lags`), so model configs follow the data.
    A plain YAML read: the runner needs no system's code to resolve it."""
    parent_file = Path(dataset_configs_path).expanduser() / "parent.yaml"
    if not parent_file.is_file():
        raise ValueError(
            f"data.dataset_configs_path={dataset_configs_path} holds no parent.yaml: point it at a dataset-config "
            "folder (e.g. conf/v1_datasets/t0_small, or one written by `python -m datamodules.v1 configs`)."
        )
    parent = OmegaConf.to_container(OmegaConf.load(parent_file))
    if key not in parent:
        raise KeyError(f"{parent_file} has no `{key}` (it has {sorted(parent)}).")
    return parent[key]


def _stable_id(run_dir: str) -> str:
    """A logger run id (wandb) derived from the run directory, so a resumed run keeps it."""
    import hashlib

    return hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]


def _wandb_offline() -> bool:
    """Online only when asked for (WANDB_MODE=online) or when an API key is configured."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode != "online"
    netrc = Path.home() / ".netrc"
    return not (os.environ.get("WANDB_API_KEY") or (netrc.is_file() and "api.wandb.ai" in netrc.read_text()))
