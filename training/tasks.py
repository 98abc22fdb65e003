"""What `training.run` does with a composed config: build the parts, run the task, write the summary."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities.exceptions import SIGTERMException

from training.checkpoint_config import config_from_checkpoint
from training.instantiate import instantiate_collection
from training.plugins import load_plugins
from training.run_state import Run
from training.toolkit.checkpoints import (
    AtomicCheckpointIO,
    checkpoint_metadata,
    load_weights,
)
from training.toolkit.errors import UserError
from training.toolkit.safe_load import trust_checkpoints
from training.validation import check_config, check_run_dir

log = logging.getLogger(__name__)


def run_task(cfg: DictConfig) -> float | None:
    """Run `cfg.task`; returns `cfg.optimized_metric` for sweepers."""
    with trust_checkpoints(bool(cfg.get("trust_checkpoint"))):
        try:
            return _run(cfg)
        finally:
            _close_wandb_run()


def _close_wandb_run() -> None:
    """End this run's wandb run: the next job of an in-process multirun would otherwise log into it."""
    wandb = sys.modules.get("wandb")  # only when a logger imported it
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def _run(cfg: DictConfig) -> float | None:
    load_plugins(cfg)
    check_config(
        cfg
    )  # every sweep job too (Hydra's callback checks single runs before their directory exists)
    if cfg.task != "fit":
        cfg = config_from_checkpoint(cfg, list(HydraConfig.get().overrides.task))
        load_plugins(cfg, stored_in=str(cfg.ckpt_path))  # the ones the checkpoint's run used
        check_config(cfg)  # the checkpoint's stored config under this command's overrides
    run = Run(cfg.paths.output_dir)
    check_run_dir(cfg, run.dir)  # before anything is written
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg.torch_threads))

    run.start(cfg)
    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)
    model: pl.LightningModule = hydra.utils.instantiate(cfg.model)
    run.data["params"] = sum(p.numel() for p in model.parameters())
    run.data["torch_threads"] = torch.get_num_threads()
    if cfg.task == "export":
        from training.export import export_onnx

        return run.finish("finished", export=export_onnx(model, datamodule, cfg))
    if cfg.task == "sample":
        return run.finish("finished", samples=_write_samples(model, cfg, run.dir))

    resolved = OmegaConf.to_container(cfg, resolve=True)
    callbacks = instantiate_collection(cfg.get("callbacks"), "callbacks")
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [cb for cb in callbacks if not isinstance(cb, ProgressBar)]
    loggers = instantiate_collection(cfg.get("logger"), "logger")
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(run.dir),
        plugins=[AtomicCheckpointIO(checkpoint_metadata(resolved))],
    )
    for logger in trainer.loggers:
        logger.log_hyperparams({**resolved, "params/total": run.data["params"]})

    started = time.perf_counter()
    try:
        metrics = _dispatch(cfg, trainer, model, datamodule, run)
    except SIGTERMException:
        metrics = {}
    status = "preempted" if _stop_reason(trainer) or trainer.received_sigterm else "finished"
    run.finish(status, trainer=trainer, metrics=metrics, wall_time_s=time.perf_counter() - started)
    value = metrics.get(cfg.get("optimized_metric") or "")
    return float(value) if value is not None else None


def _dispatch(
    cfg: DictConfig,
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    run: Run,
) -> dict[str, Any]:
    if cfg.task == "fit":
        resume_from = _resume_checkpoint(cfg, run)
        run.update(resumed_from=str(resume_from) if resume_from else None, status="running")
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
        metrics = _scalars(trainer.callback_metrics)
        if trainer.should_stop and _stop_reason(trainer):
            return metrics
        if cfg.get("test_after_fit") and not trainer.interrupted:
            best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            if best:
                # The checkpoint's own weights (EMA's when averaging): Lightning's WeightAveraging would
                # put the raw weights back if the trainer restored the file itself.
                load_weights(model, best)
            tested = trainer.test(model, datamodule=datamodule)
            metrics.update(tested[0] if tested else {})
        return metrics
    if cfg.task == "validate":
        return (trainer.validate(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path) or [{}])[0]
    if cfg.task == "test":
        return (trainer.test(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path) or [{}])[0]
    predictions = trainer.predict(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    if trainer.is_global_zero:
        torch.save(predictions, run.dir / "predictions.pt")
    return {}


def _write_samples(model: pl.LightningModule, cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """task=sample: a generative model writes `cfg.sample.num` samples (grid + arrays) from its checkpoint."""
    if not callable(getattr(model, "write_samples", None)):
        raise UserError(
            f"task=sample needs a generative model; {type(model).__name__} ({cfg.name}) has no write_samples()."
        )
    load_weights(model, cfg.ckpt_path)
    options = OmegaConf.to_container(cfg.sample, resolve=True)
    return model.write_samples(run_dir / "samples", **options)


def _resume_checkpoint(cfg: DictConfig, run: Run) -> str | None:
    if cfg.get("ckpt_path"):
        return str(cfg.ckpt_path)
    found = run.resume_checkpoint()  # check_run_dir refused a run dir taken without resume
    if found is not None:
        log.info("Resuming %s from %s", run.dir, found)
    return str(found) if found else None


def _stop_reason(trainer: pl.Trainer) -> str | None:
    """Why a callback stopped the fit early (Preemption's signal), read without naming its class."""
    return next((r for cb in trainer.callbacks if (r := getattr(cb, "stop_reason", None))), None)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
