"""Test helpers shared by every system: compose configs, run the CLI, read what a run wrote."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from training.launch import register_resolvers
from training.run_state import Run

REPO = Path(__file__).resolve().parent.parent
CONF_DIR = REPO / "conf"


def load_script(relative: str) -> ModuleType:
    """Import a script that lives outside the packages (benchmarks/, experiments/) by its path under the
    repository, registered under its file name so that its dataclasses and pickles resolve."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """The config `python -m training.run OVERRIDES` would see (without running it)."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides or [], return_hydra_config=True)


def cli_env(root: Path, **extra: str) -> dict[str, str]:
    """Environment for a CLI run whose data and logs live under `root`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("VISIONCORE_", "SLURM_", "TORCHELASTIC_"))
    }
    env.update(
        VISIONCORE_ROOT=str(root),
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        MPLBACKEND="Agg",
        **extra,
    )
    return env


def run_cli(
    root: Path,
    *overrides: str,
    module: str = "training.run",
    timeout: float = 600,
    check: bool = True,
    launcher: list[str] | None = None,
    **env: str,
) -> subprocess.CompletedProcess:
    """Run `python -m training.run OVERRIDES` (or under `launcher`, e.g. torchrun) with logs under `root`."""
    command = [*(launcher or [sys.executable, "-m"]), module, *overrides]
    result = subprocess.run(
        command, cwd=REPO, env=cli_env(root, **env), capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
            f"\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def run_main(root: Path, *overrides: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """`python -m training.run OVERRIDES` in this process: the same Hydra entry point, environment and
    output (stdout and stderr together), without the seconds of imports a new interpreter costs. Cases that
    need a process of their own (signals, DDP, torchrun, a killed run) use `run_cli`."""
    from training.run import entry

    output, threads = io.StringIO(), torch.get_num_threads()
    argv = ["training.run", *overrides]
    with (
        # HYDRA_MAIN_MODULE: find conf/ from training/run.py's file, as `python -m training.run` does
        mock.patch.dict(os.environ, cli_env(root, HYDRA_MAIN_MODULE="__main__", **env), clear=True),
        mock.patch.object(sys, "argv", argv),
        redirect_stdout(output),
        redirect_stderr(output),
    ):
        Run.new_launch()  # the run directory is chosen afresh, as in a new process
        GlobalHydra.instance().clear()
        torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 gives run_cli: results match a run in a process
        try:
            entry()  # what `python -m training.run` runs
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            GlobalHydra.instance().clear()
            torch.set_num_threads(threads)
    result = subprocess.CompletedProcess(argv, code, output.getvalue(), "")
    if check and code != 0:
        raise AssertionError(f"training.run {' '.join(overrides)} exited {code}\n{result.stdout[-8000:]}")
    return result


def run_dirs(root: Path, experiment: str) -> list[Path]:
    """Run directories of an experiment under `root`, oldest first."""
    runs = root / "logs" / experiment / "runs"
    return (
        sorted((d for d in runs.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
        if runs.is_dir()
        else []
    )


def read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def multirun_job_summary(root: Path, experiment: str) -> dict[str, Any]:
    """`summary.json` of the one multirun job of `experiment` under `root` (asserts there is one)."""
    (job,) = (root / "logs" / experiment / "multiruns").glob("*/[0-9]*")
    return read_summary(job)


# Overrides that make any classifier experiment tiny and deterministic on CPU.
TINY = [
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=6",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
    "callbacks.model_summary=null",
]


def quiet_trainer(root: Path, **overrides: Any) -> pl.Trainer:
    """A CPU Trainer for in-process tests: no logger, checkpoints, bar or summary; `overrides` win."""
    options: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    return pl.Trainer(**(options | overrides))


HOST_SYNCS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__")


def forbid_host_syncs() -> contextlib.ExitStack:
    """Patch the Tensor methods that copy values to the host so that any call raises."""
    stack = contextlib.ExitStack()
    for name in HOST_SYNCS:

        def forbidden(*args, _name: str = name, **kwargs):
            raise AssertionError(
                f"Tensor.{_name}() called inside training_step (a host-device sync per batch)"
            )

        stack.enter_context(mock.patch.object(torch.Tensor, name, forbidden))
    return stack
