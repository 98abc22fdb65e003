"""Transfer learning: start the shared core from another run's checkpoint (and keep it frozen if asked), and
read that run's readout feature vectors (the prior of `models.v1.readout_prior`)."""

from __future__ import annotations

import os

import torch
from torch import nn

from training.toolkit.checkpoints import META_KEY, load_checkpoint_file
from training.toolkit.errors import UserError
from training.toolkit.legacy import detect, load_weights_strictly

CORE_PREFIX = "net.core."
READOUT_PREFIX = "net.readouts."


def _state_dict(path: str | os.PathLike) -> dict:
    """The model weights of a checkpoint in the current layout (legacy layouts converted)."""
    checkpoint = load_checkpoint_file(path)
    if META_KEY in checkpoint:
        return checkpoint["state_dict"]
    return detect(checkpoint, str(path)).apply(checkpoint, None)["state_dict"]


def core_weights(path: str | os.PathLike) -> dict:
    """The `net.core.*` weights of a checkpoint (current or legacy layout), without the prefix."""
    weights = _state_dict(path)
    core = {key[len(CORE_PREFIX) :]: value for key, value in weights.items() if key.startswith(CORE_PREFIX)}
    if not core:
        raise UserError(
            f"model.pretrained_checkpoint={path} holds no shared-core weights ({CORE_PREFIX}*): "
            "point it at a checkpoint of a v1 run (e.g. logs/v1_pretrain/runs/<id>/checkpoints/last.ckpt)."
        )
    return core


def load_pretrained_core(module: nn.Module, path: str | os.PathLike) -> None:
    """Load the core of `path` into `module.net.core` strictly: every tensor present, every shape equal."""
    load_weights_strictly(module.net.core, core_weights(path), f"model.pretrained_checkpoint={path}")


def readout_features(path: str | os.PathLike) -> torch.Tensor:
    """(units, channels): the feature vectors of every readout in the checkpoint, all sessions stacked."""
    weights = _state_dict(path)
    features = [
        v for k, v in sorted(weights.items()) if k.startswith(READOUT_PREFIX) and k.endswith(".features")
    ]
    if not features:
        raise UserError(
            f"model.pretrained_checkpoint={path} holds no readouts ({READOUT_PREFIX}<session>.features), which "
            "model.regularization.readout_prior fits its prior to: point it at a checkpoint of a v1 run."
        )
    return torch.cat(features).float()
