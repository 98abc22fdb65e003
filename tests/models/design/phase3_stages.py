"""Tiny trained-stage checkpoints and toy design data for the phase 3 (fine-tune, innovation) tests.

The decoder samples 16² images; the encoder "trained" at 32², so every judgement resizes (as the CPU
pipeline's 32² decoder and 128² judges do). Weights are seeded and perturbed, not trained: the tests pin
gradients and bookkeeping, not quality.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, StackDataset

from models.design.schema import to_model_image
from tests.models.design.stage_checkpoints import OPTIMIZER, tiny_encoder_config
from tests.models.design.tiny_decoder import CONTEXT_DIM, RESOLUTION, perturb, toy_designs
from training.toolkit.checkpoints import META_KEY, checkpoint_metadata
from training.toolkit.sample_files import to_uint8_image

JUDGE_RESOLUTION = 32
DECODER_CONFIG = {
    "_target_": "models.design.decoder.module.DecoderModel",
    "resolution": RESOLUTION,
    "sample_steps": 2,
    "grid_per_pair": 0,
    "net": {
        "_target_": "models.design.nets.diffusion_unet.ConditionalUNet",
        "channels": 8,
        "channel_mults": [1, 2],
        "attention_levels": [1],
        "context_dim": CONTEXT_DIM,
        "heads": 2,
        "norm_groups": 4,
    },
    "meta_tokens": {"_target_": "models.design.nets.meta_tokens.MetaTokens", "dim": CONTEXT_DIM},
    "noise_scheduler": {"_target_": "diffusers.DDPMScheduler", "num_train_timesteps": 1000},
    "optimizer": OPTIMIZER,
}
ABSTRACTOR_CONFIG = {
    "_target_": "models.design.abstractor.module.AbstractorModel",
    "net": {"_target_": "models.design.nets.abstractor.Abstractor", "head_hidden": 8},
    "optimizer": OPTIMIZER,
}


def save_stage(path: Path, model_config: dict, seed: int, resolution: int, noise: float = 0.0) -> Path:
    """A checkpoint as `training.run` writes it for a run at `data.resolution=resolution`: the module built
    under `seed` from `model_config`, every parameter perturbed by `noise` (zero-initialised output
    layers then carry signal)."""
    torch.manual_seed(seed)
    module = hydra.utils.instantiate(model_config)
    if noise:
        perturb(module, seed, noise)
    run_config = {"model": model_config, "data": {"resolution": resolution}, "seed": seed}
    torch.save({"state_dict": module.state_dict(), META_KEY: checkpoint_metadata(run_config)}, path)
    return path


def write_stages(folder: Path) -> dict[str, str]:
    """`{decoder_checkpoint, encoder_checkpoint, abstractor_checkpoint}` of tiny runs under `folder`."""
    return {
        "decoder_checkpoint": str(save_stage(folder / "decoder.ckpt", DECODER_CONFIG, 3, RESOLUTION, 0.05)),
        **write_judge(folder, seed=1),
    }


def write_judge(folder: Path, seed: int) -> dict[str, str]:
    """`{encoder_checkpoint, abstractor_checkpoint}` of a tiny judge (seeds `seed` and `seed + 1`) under
    `folder`; another seed gives an independent judge."""
    encoder = {key: value for key, value in tiny_encoder_config().items() if key != "resolution"}
    return {
        "encoder_checkpoint": str(
            save_stage(folder / f"encoder{seed}.ckpt", encoder, seed, JUDGE_RESOLUTION)
        ),
        "abstractor_checkpoint": str(
            save_stage(folder / f"abstractor{seed + 1}.ckpt", ABSTRACTOR_CONFIG, seed + 1, JUDGE_RESOLUTION)
        ),
    }


class ToyDesignData(pl.LightningDataModule):
    """`tiny_decoder.toy_designs` as the DesignDM serves designs: uint8 images from the loaders,
    float [-1, 1] once on the device; validation reads the test split, `reference_dataloader` (the
    innovation's FID reference) the training split."""

    def __init__(self, num_train: int = 8, num_test: int = 8, batch_size: int = 4) -> None:
        super().__init__()
        self.splits = {"train": self._split(num_train, 0), "test": self._split(num_test, 1)}
        self.batch_size = batch_size

    @staticmethod
    def _split(count: int, seed: int) -> StackDataset:
        designs = toy_designs(count, seed)
        designs["image"] = to_uint8_image(designs["image"])
        return StackDataset(**designs)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["train"], batch_size=self.batch_size)

    def reference_dataloader(self) -> DataLoader:
        return self.train_dataloader()

    def val_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["test"], batch_size=self.batch_size)

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict:
        return {**batch, "image": to_model_image(batch["image"])}
