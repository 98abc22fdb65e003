"""Checkpoints of trained design stages for tests: a run's `model` config beside freshly seeded weights."""

from __future__ import annotations

from pathlib import Path

import hydra
import torch

from training.toolkit.checkpoints import META_KEY, checkpoint_metadata

OPTIMIZER = {"_target_": "torch.optim.Adam", "_partial_": True}


def tiny_encoder_config() -> dict:
    """A 2-level, 4-channel EncoderModel (fully convolutional: inputs divisible by 4)."""
    return {
        "_target_": "models.design.encoder.module.EncoderModel",
        "net": {
            "_target_": "models.design.nets.unet.DesignUNet",
            "base_channels": 4,
            "depth": 2,
            "norm_groups": 2,
        },
        "optimizer": OPTIMIZER,
    }


def write_checkpoint(path: Path, model_config: dict, seed: int, data_config: dict | None = None) -> Path:
    """A checkpoint as `training.run` writes it (run config: `model`, and `data` when given), so
    `load_trained_module` can rebuild the module from it."""
    torch.manual_seed(seed)
    module = hydra.utils.instantiate(model_config)
    config = {"model": model_config} | ({"data": data_config} if data_config is not None else {})
    torch.save({"state_dict": module.state_dict(), META_KEY: checkpoint_metadata(config)}, path)
    return path
