"""Who this launch is: its id (the same for every rank) and this process's rank, and the resolvers the
runner's configs use (`vc.*`).

A run directory's name must not come from a per-process clock: under `torchrun`, SLURM or Lightning's
own DDP launcher every rank composes the config itself. The id below is taken from the launcher's
environment when there is one, and exported so child processes inherit it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

RUN_ID_ENV = "VISIONCORE_RUN_ID"


def launcher_run_id() -> str | None:
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
        or launcher_run_id()
        or f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{os.urandom(2).hex()}"
    )
    os.environ[RUN_ID_ENV] = value  # children (Lightning's DDP launcher, dataloader workers) inherit it
    return value


def register_resolvers() -> None:
    """Resolvers used by conf/hydra and conf/logger (safe to call more than once)."""
    if not OmegaConf.has_resolver("vc.run_dir"):
        from training.run_state import Run
        from training.sweep import job_subdir, sweep_id

        OmegaConf.register_new_resolver("vc.run_dir", lambda *where: str(Run.for_launch(*where).dir))
        OmegaConf.register_new_resolver("vc.run_id", run_id)
        OmegaConf.register_new_resolver("vc.stable_id", _stable_id)
        # conf/hydra: sweep directories that a re-run of the same command finds again
        OmegaConf.register_new_resolver("vc.sweep_id", sweep_id)
        OmegaConf.register_new_resolver("vc.job_subdir", job_subdir)
        OmegaConf.register_new_resolver("vc.is_tty", lambda: sys.stdout.isatty())
        OmegaConf.register_new_resolver("vc.leaf", lambda path: Path(path).name)
        OmegaConf.register_new_resolver("vc.repo_dir", lambda: str(Path(__file__).resolve().parent.parent))
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
