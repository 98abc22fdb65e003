"""Transfer learning: start the shared core from another run's checkpoint (and keep it frozen if asked), and
read that run's readout feature vectors (the prior of `models.v1.readout_prior`)."""

from __future__ import annotations

import os

import torch
from torch import nn

from training.toolkit.checkpoints import META_KEY, load_checkpoint_file
from training.toolkit.errors import UserError
from training.toolkit.legacy import LegacyCheckpointError, detect, load_weights_strictly

CORE_PREFIX = "net.core."
READOUT_PREFIX = "net.readouts."


def pretrained_weights(path: str | os.PathLike) -> dict:
    """The model weights of a checkpoint in the current layout (legacy layouts converted), read once for
    both the core and the readouts' prior."""
    checkpoint = load_checkpoint_file(path)
    if META_KEY in checkpoint:
        return checkpoint["state_dict"]
    return detect(checkpoint, str(path)).apply(checkpoint, None)["state_dict"]


def core_weights(weights: dict, source: str | os.PathLike) -> dict:
    """The `net.core.*` entries of `weights` (read from `source`), without the prefix."""
    core = {key[len(CORE_PREFIX) :]: value for key, value in weights.items() if key.startswith(CORE_PREFIX)}
    if not core:
        raise UserError(
            f"model.pretrained_checkpoint={source} holds no shared-core weights ({CORE_PREFIX}*): "
            "point it at a checkpoint of a v1 run (e.g. logs/v1_pretrain/runs/<id>/checkpoints/last.ckpt)."
        )
    return core


def load_pretrained_core(module: nn.Module, weights: dict, source: str | os.PathLike) -> None:
    """Load the core of `weights` into `module.net.core` strictly: every tensor present, every shape equal."""
    try:
        load_weights_strictly(
            module.net.core, core_weights(weights, source), f"model.pretrained_checkpoint={source}"
        )
    except LegacyCheckpointError as error:
        raise UserError(
            f"{error} Build this run's core as the pretraining run's was: the same model= and "
            "model.net.core.* overrides (channels, kernels, output_steps). v1_pretrain runs made before T1-T3 "
            "read two time steps used model=v1_core_wide."
        ) from error


def readout_features(weights: dict, source: str | os.PathLike) -> torch.Tensor:
    """(units, channels): the feature vectors of every readout in `weights`, all sessions stacked."""
    features = [
        v for k, v in sorted(weights.items()) if k.startswith(READOUT_PREFIX) and k.endswith(".features")
    ]
    if not features:
        raise UserError(
            f"model.pretrained_checkpoint={source} holds no readouts ({READOUT_PREFIX}<session>.features), which "
            "model.regularization.readout_prior fits its prior to: point it at a checkpoint of a v1 run."
        )
    return torch.cat(features).float()
