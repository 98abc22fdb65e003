"""Spawn-based DDP (`trainer.strategy=ddp_spawn`, `ddp_fork`, `ddp_notebook`, or a DDPStrategy with
`start_method: spawn|fork|forkserver`): the run starts one process per device and each runs the whole task.

Lightning's own spawn launcher pickles the live Trainer, model and datamodule into every process and,
after `trainer.fit`, brings back only the weights, `callback_metrics` and the best checkpoint's path.
The Trainer left in the launching process keeps its pre-fit step and epoch counters, callbacks (best
score, throughput) and loggers (the columns of metrics.csv), so `test_after_fit` and summary.json would
read stale state (the CSV logger even fails on its stale header). So here, as under `torchrun`, each
process composes nothing and receives only the composed config (plain, picklable data): it runs
`training.tasks.run_task` under Lightning's DDPStrategy, which reads its rank from the environment.
The launching process only waits, forwards SIGTERM/SIGUSR1 (preemption) and returns rank 0's result,
so the run writes exactly what `trainer=ddp_cpu` writes. A failing rank stops the others, and its error
(the one-paragraph message for a user mistake) is raised in the launching process.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from training.toolkit.errors import UserError

log = logging.getLogger(__name__)
SPAWN_METHODS = ("spawn", "fork", "forkserver")
DDP_TARGET = "pytorch_lightning.strategies.DDPStrategy"


def spawn_method(strategy: Any) -> str | None:
    """The multiprocessing start method when `trainer.strategy` is a spawn-based DDP strategy, else None."""
    if isinstance(strategy, str):
        from pytorch_lightning.strategies import DDPStrategy, StrategyRegistry

        if strategy not in StrategyRegistry:
            return None
        entry = StrategyRegistry[strategy]
        method = entry["init_params"].get("start_method")
        return method if issubclass(entry["strategy"], DDPStrategy) and method in SPAWN_METHODS else None
    if isinstance(strategy, DictConfig | dict) and strategy.get("start_method") in SPAWN_METHODS:
        return str(strategy["start_method"])
    return None


def _external_strategy(strategy: Any) -> dict[str, Any]:
    """The same DDP settings without the start method: Lightning then takes the ranks from the environment."""
    if isinstance(strategy, str):
        from pytorch_lightning.strategies import StrategyRegistry

        params = dict(StrategyRegistry[strategy]["init_params"])
        params.setdefault("find_unused_parameters", "${ddp_find_unused_parameters}")  # as trainer=ddp_cpu
        settings = {"_target_": DDP_TARGET, **params}
    else:
        settings = (
            OmegaConf.to_container(strategy, resolve=False)
            if isinstance(strategy, DictConfig)
            else dict(strategy)
        )
    settings.pop("start_method", None)
    return settings


def _processes_per_node(trainer: DictConfig) -> int:
    """How many processes Lightning's DDP would start on this node for `trainer.devices`/`accelerator`."""
    from pytorch_lightning.trainer.connectors.accelerator_connector import _AcceleratorConnector

    devices = trainer.get("devices", "auto")
    if OmegaConf.is_list(devices):
        devices = list(devices)
    connector = _AcceleratorConnector(
        devices=devices,
        num_nodes=int(trainer.get("num_nodes", 1) or 1),
        accelerator=trainer.get("accelerator", "auto"),
        strategy="ddp",
    )
    return max(len(connector.strategy.parallel_devices or []), 1)


def run_spawned(cfg: DictConfig) -> float | None:
    """Run `cfg.task` in one new process per device (see the module doc); returns rank 0's result."""
    import torch.multiprocessing as mp
    from hydra.core.hydra_config import HydraConfig
    from lightning_fabric.plugins.environments.lightning import find_free_network_port

    strategy = cfg.trainer.strategy
    method = spawn_method(strategy)
    assert method is not None
    nprocs = _processes_per_node(cfg.trainer)
    num_nodes = int(cfg.trainer.get("num_nodes", 1) or 1)
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.trainer.strategy = _external_strategy(strategy)
    env = {
        "MASTER_ADDR": os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "MASTER_PORT": os.environ.get("MASTER_PORT") or str(find_free_network_port()),
        "NODE_RANK": os.environ.get("NODE_RANK", "0"),
        "WORLD_SIZE": str(nprocs * num_nodes),
        "LOCAL_WORLD_SIZE": str(nprocs),
    }
    log.info(
        "trainer.strategy=%s: starting %d processes (start method %s); each runs the task (see training/spawn.py)",
        strategy if isinstance(strategy, str) else "DDPStrategy",
        nprocs,
        method,
    )
    # SIGTERM is passed on as SIGUSR1 when the Preemption callback is on (see _wait).
    preemption = (cfg.get("callbacks") or {}).get("preemption")
    stop_signal = getattr(signal, "SIGUSR1", None) if preemption else None
    with tempfile.TemporaryDirectory(prefix="visioncore-spawn-") as reports:
        context = mp.start_processes(
            _worker,
            args=(cfg, HydraConfig.instance().cfg, env, reports, stop_signal),
            nprocs=nprocs,
            start_method=method,
            join=False,
        )
        failure = _wait(context, stop_signal)
        results = {
            int(path.stem.removeprefix("rank")): json.loads(path.read_text())
            for path in Path(reports).glob("rank*.json")
        }
    # The root cause: a user mistake, else the first rank that failed (the others then lose their peer).
    errors = sorted(
        (not r.get("user_error"), r.get("time", 0.0), rank) for rank, r in results.items() if "error" in r
    )
    if errors:
        *_, rank = errors[0]
        report = results[rank]
        if report.get("user_error"):
            raise UserError(report["error"])
        raise RuntimeError(
            f"rank {rank} of trainer.strategy={strategy} failed: {report['error']} "
            f"(its traceback is in the run directory's rank{rank}.log)"
        )
    if failure is not None:
        raise RuntimeError(f"trainer.strategy={strategy}: a process failed: {failure}") from failure
    return results.get(0, {}).get("value")


def _wait(context: Any, sigterm_as: int | None) -> BaseException | None:
    """Join the processes; a failed one is returned (torch has stopped the others).

    SIGTERM and SIGUSR1 sent to this process reach the processes too, SIGTERM as `sigterm_as` (SIGUSR1
    when the Preemption callback is on: Lightning's own SIGTERM handler broadcasts from inside the signal
    handler, which deadlocks ranks that are in another collective; Preemption agrees on a batch
    boundary). A first Ctrl-C (which the terminal sends to every process) lets them checkpoint and stop.
    """

    def forward(signum: int, frame: Any) -> None:
        sent = sigterm_as if signum == signal.SIGTERM and sigterm_as is not None else signum
        for process in context.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, sent)

    forwarded = [s for s in (signal.SIGTERM, getattr(signal, "SIGUSR1", None)) if s is not None]
    previous = {s: signal.signal(s, forward) for s in forwarded}
    interrupted = False
    try:
        while True:
            try:
                if context.join(timeout=1.0):
                    return None
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                log.warning(
                    "Ctrl-C: the processes save a checkpoint and stop; press it again to stop at once."
                )
    except KeyboardInterrupt:
        raise
    except Exception as err:
        return err
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for process in context.processes:
            if process.is_alive():
                process.terminate()


def _worker(
    local_rank: int,
    cfg: DictConfig,
    hydra_root: DictConfig,
    env: dict[str, str],
    reports: str,
    stop_signal: int | None,
) -> None:
    """One rank: the environment Lightning reads, Hydra's config and logging, then the task."""
    os.environ.update(env)
    node_rank, nprocs = int(env["NODE_RANK"]), int(env["LOCAL_WORLD_SIZE"])
    os.environ.update(LOCAL_RANK=str(local_rank), RANK=str(node_rank * nprocs + local_rank))
    _die_with_parent(stop_signal or signal.SIGKILL)
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import configure_log, setup_globals

    from training.launch import register_resolvers

    setup_globals()
    register_resolvers()
    HydraConfig.instance().cfg = hydra_root  # type: ignore[assignment]  # as Hydra set it for this job
    configure_log(hydra_root.hydra.job_logging, hydra_root.hydra.verbose)
    report = Path(reports) / f"rank{local_rank}.json"
    try:
        from training.tasks import run_task

        value = run_task(cfg)
        report.write_text(json.dumps({"value": value}))
    except Exception as err:
        from training.run_state import Run
        from training.toolkit.errors import explain

        message = explain(err)
        Run(hydra_root.hydra.runtime.output_dir).record_failure(
            message or f"{type(err).__name__}: {err}", cfg
        )
        report.write_text(
            json.dumps(
                {
                    "error": message or f"{type(err).__name__}: {err}",
                    "time": time.time(),
                    "user_error": message is not None,
                }
            )
        )
        if message is not None:
            log.error("%s", message)
        else:
            log.exception("Rank %d failed", local_rank)
        sys.exit(1)


def _die_with_parent(signum: int) -> None:
    """Linux: get `signum` (Preemption's checkpoint-and-stop signal, else SIGKILL) when the launching
    process dies, instead of training on as an orphan."""
    if sys.platform != "linux":
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signum))  # PR_SET_PDEATHSIG
    except OSError:
        pass
