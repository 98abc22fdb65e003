"""Load another run's trained model from its checkpoint alone (pipelines: each stage reads the previous one's)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch

from training.toolkit.checkpoints import load_checkpoint_file, stored_config
from training.toolkit.errors import UserError


def load_trained_module(
    path: str | os.PathLike, key: str, expected: type[pl.LightningModule] | None = None
) -> pl.LightningModule:
    """The LightningModule `path` was trained as (built from its stored `model` config), weights loaded
    strictly (the averaged ones when it trained with EMA), frozen and in eval mode.

    `key` names the config key that gave the path, for the error message. Modules that point at other
    checkpoints load those in `setup()`, not `__init__`, so building one here does not cascade.
    """
    if not Path(path).expanduser().is_file():
        raise UserError(
            f"{key}={path} is not a file: point it at a checkpoint of that stage's run "
            "(<run>/checkpoints/*.ckpt; its summary.json names the best one)."
        )
    checkpoint = load_checkpoint_file(path)
    config = stored_config(path, f"{key}={path}", checkpoint) or {}
    if "model" not in config:
        raise UserError(
            f"{key}={path} carries no VisionCore run config, so the model it holds cannot be rebuilt. "
            "Point it at a checkpoint written by `python -m training.run` (<run>/checkpoints/*.ckpt)."
        )
    module = hydra.utils.instantiate(config["model"])
    if expected is not None and not isinstance(module, expected):
        raise UserError(
            f"{key}={path} holds a {type(module).__name__} ({config.get('name')} run), not a "
            f"{expected.__name__}: point it at a checkpoint of the right stage."
        )
    module.load_state_dict(checkpoint["state_dict"], strict=True)
    return module.eval().requires_grad_(False)


def untrained_model(trainer: pl.Trainer, config_key: str, **overrides: Any) -> pl.LightningModule:
    """The model as its run started: the run's `model` config (which `training.run` stamps on the trainer's
    checkpoint writer) built under the run's seed with `overrides` (e.g. quality=None), frozen, in eval mode.
    The untrained-model baseline of generative quality measurements; `config_key` names the evaluator."""
    metadata = getattr(trainer.strategy.checkpoint_io, "metadata", None) or {}
    run_config: dict[str, Any] = metadata.get("config") or {}
    if "model" not in run_config:
        raise UserError(
            f"{config_key}: the untrained-model baseline rebuilds the model from its run config, which only "
            "runs of `python -m training.run` carry; test through it, or set "
            f"{config_key}=null to skip the sample-quality measurement."
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run_config.get("seed", 0))
        module = hydra.utils.instantiate(run_config["model"], **overrides)
    return module.eval().requires_grad_(False)
