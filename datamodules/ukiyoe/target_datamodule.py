"""`TargetDM`: the one RGBA target print of the NCA grow experiment, on a padded canvas.

The target is a procedural print (`render_print(index, resolution, seed)`) or a user's image file
(`target_image`), fitted into `resolution` pixels and centred on a `canvas`-pixel transparent square, as
premultiplied RGBA in [0, 1] (the Growing-NCA paper's target). Every split yields that same target; an
epoch is `steps_per_epoch` training batches (the pool of states lives in the model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from datamodules.loading import ResumableLoader
from training.toolkit.errors import UserError


def load_target(
    resolution: int, canvas: int, index: int = 0, seed: int = 0, target_image: str | None = None
) -> torch.Tensor:
    """(4, canvas, canvas) float32 premultiplied RGBA in [0, 1]: the print (alpha 1) in the centre."""
    if canvas < resolution:
        raise UserError(f"data.canvas={canvas} must be >= data.resolution={resolution} (the print's side).")
    if target_image is None:
        from datamodules.ukiyoe.procedural import render_print

        rgb, _ = render_print(index, resolution, seed)
        image = Image.fromarray(rgb).convert("RGBA")
    else:
        path = Path(target_image).expanduser()
        if not path.is_file():
            raise UserError(
                f"data.target_image={target_image}: no such file; give a path to a PNG/JPEG image."
            )
        with Image.open(path) as opened:
            image = ImageOps.contain(
                opened.convert("RGBA"), (resolution, resolution), Image.Resampling.LANCZOS
            )
    rgba = np.asarray(image, dtype=np.float32) / 255.0
    rgba[..., :3] *= rgba[..., 3:]
    target = torch.zeros(4, canvas, canvas)
    height, width = rgba.shape[:2]
    top, left = (canvas - height) // 2, (canvas - width) // 2
    target[:, top : top + height, left : left + width] = torch.from_numpy(rgba).permute(2, 0, 1)
    return target


class _Repeated(Dataset):
    """The target `length` times."""

    def __init__(self, target: torch.Tensor, length: int) -> None:
        self.target, self.length = target, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.target


class TargetDM(pl.LightningDataModule):
    """Batches of one target (1, 4, canvas, canvas): `steps_per_epoch` for training, one for val and test."""

    def __init__(
        self,
        resolution: int = 32,
        canvas: int = 40,
        index: int = 0,
        seed: int = 0,
        target_image: str | None = None,
        steps_per_epoch: int = 100,
        num_workers: int = 0,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__()
        if steps_per_epoch < 1:
            raise UserError(f"data.steps_per_epoch={steps_per_epoch} must be >= 1.")
        self.save_hyperparameters(logger=False)
        self.target: torch.Tensor | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.target is None:
            hp = self.hparams
            self.target = load_target(hp.resolution, hp.canvas, hp.index, hp.seed, hp.target_image)

    def _dataset(self, length: int) -> _Repeated:
        if self.target is None:
            raise RuntimeError("TargetDM: call setup() before asking for a dataloader.")
        return _Repeated(self.target, length)

    def train_dataloader(self) -> ResumableLoader:
        hp = self.hparams
        return ResumableLoader(
            self._dataset(hp.steps_per_epoch),
            batch_size=1,
            seed=hp.seed,
            num_workers=hp.num_workers,
            persistent_workers=hp.persistent_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._dataset(1), batch_size=1)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self._dataset(1), batch_size=1)
