"""LightningDataModule of the `design` system: procedurally rendered designs, their F_Tensors and labels.

Train, val and test draw from separate seed streams (disjoint designs). `prepare_data` renders the
shards once (rank 0; cached on disk); loaders are `ResumableLoader`s, so the training order is fixed
by (seed, epoch), shared across ranks and resumable mid-epoch. Images travel as uint8 and become
float [-1, 1] on the device (`on_after_batch_transfer`). With `label` set, batches are `(images, labels)` for
the `cnn` system's image classifiers (`models/design/metadata_classes.py`, `experiment=design_reader`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from datamodules.design.dataset import STORAGES, DesignDataset
from datamodules.design.store import DesignDataConfig, generate
from datamodules.loading import ResumableLoader, split_loader
from models.design.metadata_classes import check_label, class_names, label_of
from models.design.schema import to_model_image
from training.toolkit.errors import UserError

SPLITS_OF_STAGE = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


class DesignDM(pl.LightningDataModule):
    """Train/val/test/predict loaders of rendered designs at `resolution` pixels (square canvas)."""

    def __init__(
        self,
        resolution: int = 64,
        num_train: int = 4096,
        num_val: int = 512,
        num_test: int = 512,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        persistent_workers: bool = False,
        pin_memory: bool = False,
        storage: str = "shards",
        data_dir: str = "data",
        seed: int = 0,
        drop_last: bool = True,
        generate_workers: int = 1,
        label: str | None = None,
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if label is not None:
            check_label(label)
            classes = len(class_names(label))
            if num_classes is not None and num_classes != classes:
                raise UserError(
                    f"data.num_classes={num_classes} but data.label={label} has {classes} classes."
                )
        if input_shape is not None and [int(v) for v in input_shape] != [3, resolution, resolution]:
            raise UserError(
                f"data.input_shape={list(input_shape)} must be [3, data.resolution, data.resolution]."
            )
        if storage not in STORAGES:
            raise UserError(f"data.storage={storage!r}; choose one of {', '.join(STORAGES)}.")
        if batch_size < 1:
            raise UserError(f"data.batch_size={batch_size} must be >= 1.")
        self.save_hyperparameters(logger=False)
        self.config = DesignDataConfig(resolution, seed, num_train, num_val, num_test)
        self.datasets: dict[str, DesignDataset] = {}

    def prepare_data(self) -> None:
        """Render the shards when `storage=shards` and they are not cached yet (Lightning: rank 0 only)."""
        if self.hparams.storage == "shards":
            generate(self.config, self.hparams.data_dir, workers=self.hparams.generate_workers)

    def setup(self, stage: str | None = None) -> None:
        """Open (or render, for `storage=memory`) the splits `stage` needs."""
        for split in SPLITS_OF_STAGE.get(stage or "", ("train", "val", "test")):
            if split not in self.datasets:
                self.datasets[split] = DesignDataset(
                    self.config, split, self.hparams.storage, self.hparams.data_dir
                )

    def _dataset(self, split: str) -> DesignDataset:
        if split not in self.datasets:
            raise RuntimeError(f"DesignDM: call setup() before asking for the {split} dataloader.")
        return self.datasets[split]

    def _loader(self, split: str) -> ResumableLoader:
        return split_loader(self._dataset(split), split == "train", self.hparams)

    def train_dataloader(self) -> ResumableLoader:
        return self._loader("train")

    def val_dataloader(self) -> ResumableLoader | list:
        return self._loader("val") if self.config.num_val else []

    def test_dataloader(self) -> ResumableLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        # A plain loader: Lightning re-creates predict loaders to track batch indices.
        return self.ordered_dataloader("test")

    def ordered_dataloader(self, split: str) -> DataLoader:
        """A plain loader over all of `split` in index order (no shuffling, no resumable position): for
        reading a split once beside training without moving the training loader's state."""
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        hp = self.hparams
        return DataLoader(
            self._dataset(split),
            batch_size=hp.eval_batch_size or hp.batch_size,
            num_workers=hp.num_workers,
            pin_memory=hp.pin_memory,
        )

    @staticmethod
    def pixel_normalisation(data: Mapping[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (mean, std) on [0, 1] pixels: designs are read as x / 127.5 - 1 = (x / 255 - 0.5) / 0.5."""
        return (0.5,) * 3, (0.5,) * 3

    def on_after_batch_transfer(
        self, batch: dict[str, Any], dataloader_idx: int
    ) -> dict[str, Any] | tuple[Any, Any]:
        """uint8 images -> float [-1, 1] on the device (the transfer stays 4x smaller); with `label`, the
        classifier's `(images, labels)`. Anything else (a classifier's example input for its summary) is
        already what the model reads."""
        if not isinstance(batch, Mapping):
            return batch
        image = to_model_image(batch["image"])
        if self.hparams.label is not None:
            return image, label_of(batch["goal"], batch["format"], self.hparams.label)
        return {**batch, "image": image}
