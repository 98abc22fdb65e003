"""Transfer learning: start the shared core from another run's checkpoint (and keep it frozen if asked)."""

from __future__ import annotations

import os

from torch import nn

from training.toolkit.checkpoints import META_KEY, load_checkpoint_file
from training.toolkit.errors import UserError
from training.toolkit.legacy import detect, load_weights_strictly

CORE_PREFIX = "net.core."


def core_weights(path: str | os.PathLike) -> dict:
    """The `net.core.*` weights of a checkpoint (current or legacy layout), without the prefix."""
    checkpoint = load_checkpoint_file(path)
    if META_KEY in checkpoint:
        weights = checkpoint["state_dict"]
    else:
        weights = detect(checkpoint, str(path)).apply(checkpoint, None)["state_dict"]
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
