"""`python -m training.run experiment=NAME [key=value ...]`: the one way to train, test and export.

Composes `conf/train.yaml`, then hands the config to `training.tasks.run_task` (or, for a spawn-based
DDP strategy such as `trainer.strategy=ddp_spawn`, to one process per device: `training.spawn`).
User mistakes are printed as one paragraph (see `training.toolkit.errors`) and exit with status 2.

In a sweep (`--multirun`, `hparams_search=…`) a job that fails is recorded as failed (its summary.json
and the sweep's multirun_summary.csv carry the error) and the sweep goes on; a job whose run already
finished in its directory is skipped and one left unfinished continues (see `training.sweep`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from training.launch import global_rank, register_resolvers
from training.toolkit.errors import cli, explain

register_resolvers()
log = logging.getLogger("training.run")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> Any:
    from training import sweep
    from training.run_state import Run

    Run.new_launch()
    multirun = sweep.in_multirun()
    try:
        if not multirun:
            return _run(cfg)
        finished = sweep.prepare_job(cfg)
        if finished is not None:
            return finished.value
        with sweep.single_run_command(cfg):
            return _run(cfg)
    except Exception as err:
        message = explain(err)
        error = message or f"{type(err).__name__}: {err}"
        Run(sweep.job_dir()).record_failure(error, cfg, sweep_job=multirun)
        if not multirun:
            if os.environ.get(sweep.SWEEP_JOB_ENV) and global_rank() > 0:
                # A rank that Lightning's launcher started for a sweep job: rank 0 records the failure and the
                # sweep goes on (a failed exit status here would make the launcher kill rank 0's sweep).
                log.error("Rank %d of sweep job %s failed: %s", global_rank(), sweep.job_dir(), error)
                sys.exit(0)
            if message is None:
                raise
            log.error("%s", message)
            sys.exit(2)
        if message is not None:
            log.error("Job %s failed (the sweep goes on): %s", sweep.job_dir().name, message)
        else:
            log.exception("Job %s failed (the sweep goes on)", sweep.job_dir().name)
        failed = sweep.JobFailed(error)
    # Leaving the except block dropped the traceback that held the failed job's model and tensors.
    gc.collect()
    _empty_device_cache()
    return failed


def _run(cfg: DictConfig) -> float | None:
    from training.spawn import run_spawned, spawn_method

    if spawn_method(cfg.trainer.get("strategy")):
        return run_spawned(cfg)
    from training.tasks import run_task  # after Hydra set up logging; keeps `--help` fast

    return run_task(cfg)


def load_plugins_for_printing(argv: list[str]) -> None:
    """`--cfg`/`--info` print (and with `--resolve`, resolve) the config before any callback runs: import the
    plugins the composed config lists first, so their resolvers exist. A composition mistake is left for
    Hydra to report as usual."""
    if not any(arg in ("--cfg", "-c", "--info", "-i") or arg.startswith("--cfg=") for arg in argv):
        return
    from hydra import compose, initialize_config_dir

    from training.plugins import load_plugins
    from training.toolkit.errors import CONF_DIR

    overrides = [arg for arg in argv if "=" in arg and not arg.startswith("-")]
    with contextlib.suppress(Exception), initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        load_plugins(compose(config_name="train", overrides=overrides))


def _empty_device_cache() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def entry() -> None:
    """What `python -m training.run` runs: a task on a checkpoint composes the checkpoint's experiment unless
    one is named; composition mistakes (unknown option, key, override syntax) also exit 2 with one paragraph."""
    if any(arg.lstrip("+").startswith("ckpt_path=") for arg in sys.argv[1:]):
        from training.checkpoint_config import with_checkpoint_experiment  # reads the file: only when named

        sys.argv[1:] = with_checkpoint_experiment(sys.argv[1:])
    load_plugins_for_printing(sys.argv[1:])
    cli(main)


if __name__ == "__main__":
    entry()
