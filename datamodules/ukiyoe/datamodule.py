"""LightningDataModule of the `ukiyoe` system: procedural woodblock-style prints or a user's folder of prints.

`source: procedural` writes the print set once (prepare_data, rank 0; cached on disk, see store.py) and
reads its ImageFolder layout; `source: image_folder` reads `image_folder.train` (class sub-folders or a
flat folder = one class) and `image_folder.test`, or holds out fixed shares of train for val/test.
Batches are (float32 (B, 3, R, R) in [-1, 1], int64 labels (B,)). With `on_device` (the default) the
training split is one uint8 tensor on the training device and batches are cut and flipped there
(datamodules/device_batches.py); otherwise, and for val/test, a ResumableLoader reads the files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytorch_lightning as pl
import torch

from datamodules.device_batches import BatchAugment, DeviceImageBatches, training_device
from datamodules.loading import ResumableLoader, split_loader
from datamodules.ukiyoe.dataset import PrintImages, folder_samples
from datamodules.ukiyoe.procedural import SCENES, SPLITS, scene_of
from datamodules.ukiyoe.store import PrintSetConfig, generate, print_path, read_meta
from training.toolkit.errors import UserError

SOURCES = ("procedural", "image_folder")
IMAGE_FOLDER_DEFAULTS = {
    "train": None,
    "test": None,
    "val_fraction": 0.1,
    "test_fraction": 0.2,
    "split_seed": 0,
}


class UkiyoeDM(pl.LightningDataModule):
    """Train/val/test loaders of square `resolution` prints with their class (scene or sub-folder) labels."""

    def __init__(
        self,
        source: str = "procedural",
        resolution: int = 32,
        num_train: int = 2048,
        num_val: int = 256,
        num_test: int = 512,
        image_folder: Mapping[str, Any] | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        persistent_workers: bool = False,
        pin_memory: bool = False,
        seed: int = 0,
        data_dir: str = "data",
        augment: bool = False,
        drop_last: bool = True,
        generate_workers: int = 1,
        num_classes: int | None = None,
        input_shape: Any = None,
        on_device: bool = True,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise UserError(f"data.source={source!r}; choose one of {', '.join(SOURCES)}.")
        if batch_size < 1:
            raise UserError(f"data.batch_size={batch_size} must be >= 1.")
        self.save_hyperparameters(logger=False)
        self.source = source
        self.resolution = resolution
        self.image_folder = {**IMAGE_FOLDER_DEFAULTS, **dict(image_folder or {})}
        self.config = PrintSetConfig(resolution, seed, num_train, num_val, num_test)
        self.datasets: dict[str, PrintImages] = {}
        self._train_on_device: tuple[torch.Tensor, torch.Tensor] | None = None  # (uint8 images, labels)
        self._splits: dict[str, list[tuple[str, int]]] | None = None
        self._class_names: list[str] | None = list(SCENES) if source == "procedural" else None
        if input_shape is not None and [int(v) for v in input_shape] != [3, resolution, resolution]:
            raise UserError(
                f"data.input_shape={list(input_shape)} must be [3, data.resolution, data.resolution]."
            )

    @property
    def class_names(self) -> list[str]:
        if self._class_names is None:
            self._class_names = folder_samples(self.image_folder["train"], "data.image_folder.train")[1]
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def prepare_data(self) -> None:
        """Write the procedural print set when it is not cached yet (Lightning: rank 0 only)."""
        if self.source == "procedural":
            generate(self.config, self.hparams.data_dir, workers=self.hparams.generate_workers)

    @staticmethod
    def pixel_normalisation(data: Mapping[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (mean, std) on [0, 1] pixels: prints are read as x / 127.5 - 1 = (x / 255 - 0.5) / 0.5."""
        return (0.5,) * 3, (0.5,) * 3

    def setup(self, stage: str | None = None) -> None:
        """Index every split (cheap: file lists only) and check the declared number of classes."""
        if self._splits is None:
            self._splits = self._procedural_splits() if self.source == "procedural" else self._folder_splits()
            declared = self.hparams.num_classes
            if declared is not None and declared != self.num_classes:
                raise UserError(
                    f"data.num_classes={declared} but the data has {self.num_classes} classes "
                    f"({', '.join(self.class_names)}); set data.num_classes={self.num_classes}."
                )
        for split, samples in self._splits.items():
            flip = self.hparams.augment and split == "train"
            self.datasets.setdefault(split, PrintImages(samples, self.resolution, flip=flip))

    def _procedural_splits(self) -> dict[str, list[tuple[str, int]]]:
        folder = self.config.folder(self.hparams.data_dir)
        read_meta(folder)  # a clear error when prepare_data has not run
        return {
            split: [
                (str(folder / print_path(split, i)), scene_of(i)) for i in range(self.config.count(split))
            ]
            for split in SPLITS
        }

    def _folder_splits(self) -> dict[str, list[tuple[str, int]]]:
        """Train folder minus fixed held-out shares (val; test too when image_folder.test is null)."""
        folder = self.image_folder
        samples, self._class_names = folder_samples(folder["train"], "data.image_folder.train")
        test = None
        if folder["test"] is not None:
            test, test_classes = folder_samples(folder["test"], "data.image_folder.test")
            if test_classes != self._class_names:
                raise UserError(
                    f"data.image_folder.test has classes {test_classes} but data.image_folder.train has "
                    f"{self._class_names}; both folders need the same class sub-folders."
                )
        order = torch.randperm(
            len(samples), generator=torch.Generator().manual_seed(folder["split_seed"])
        ).tolist()
        num_test = 0 if test is not None else round(folder["test_fraction"] * len(samples))
        num_val = round(folder["val_fraction"] * len(samples))
        held_test, held_val, train = (
            order[:num_test],
            order[num_test : num_test + num_val],
            order[num_test + num_val :],
        )
        if not train:
            raise UserError(
                f"data.image_folder.train holds {len(samples)} images, none left for training after the held-out "
                "shares; add images or lower data.image_folder.val_fraction / test_fraction."
            )
        pick = lambda indices: [samples[i] for i in sorted(indices)]  # noqa: E731 - sorted: folder order
        return {"train": pick(train), "val": pick(held_val), "test": test or pick(held_test)}

    def _dataset(self, split: str) -> PrintImages:
        if split not in self.datasets:
            raise RuntimeError(f"UkiyoeDM: call setup() before asking for the {split} dataloader.")
        return self.datasets[split]

    def _loader(self, split: str) -> ResumableLoader:
        return split_loader(self._dataset(split), split == "train", self.hparams)

    def train_dataloader(self) -> ResumableLoader | DeviceImageBatches:
        hp = self.hparams
        train = len(self._dataset("train"))
        if hp.drop_last and train < hp.batch_size:
            source = "data.num_train" if self.source == "procedural" else "data.image_folder.train"
            raise UserError(
                f"data.batch_size={hp.batch_size} is more than the {train} training images ({source}), so "
                "data.drop_last=true leaves no training batch; lower data.batch_size, or add images."
            )
        if not hp.on_device:
            return self._loader("train")
        if self._train_on_device is None:  # read once; the same pixels PrintImages gives, before flips
            dataset, device = self._dataset("train"), training_device(self)
            images = torch.stack([dataset.uint8(i) for i in range(len(dataset))])
            labels = torch.tensor([label for _, label in dataset.samples], dtype=torch.long)
            self._train_on_device = images.to(device), labels.to(device)
        mean, std = self.pixel_normalisation(hp)
        return DeviceImageBatches(
            *self._train_on_device,
            batch_size=hp.batch_size,
            shuffle=True,
            seed=hp.seed,
            drop_last=hp.drop_last,
            mean=mean,
            std=std,
            augment=BatchAugment(flip=True) if hp.augment else None,
        )

    def val_dataloader(self) -> ResumableLoader | list:
        return self._loader("val") if len(self._dataset("val")) else []

    def test_dataloader(self) -> ResumableLoader:
        return self._loader("test")

    def uint8_batches(self, split: str, count: int, batch_size: int) -> Iterator[torch.Tensor]:
        """uint8 (B, 3, R, R) batches of the first `count` images of `split` (fixed order, no augmentation),
        e.g. the real images of an FID reference set."""
        if split not in self.datasets:
            self.setup()
        dataset = self._dataset(split)
        if count > len(dataset):
            keys = (
                f"data.num_{split}"
                if self.source == "procedural"
                else "data.image_folder.train / .test (and .val_fraction, .test_fraction)"
            )
            raise UserError(
                f"{count} {split} images requested but the {split} split has {len(dataset)}; "
                f"raise {keys} or ask for fewer images."
            )
        for start in range(0, count, batch_size):
            yield torch.stack([dataset.uint8(i) for i in range(start, min(start + batch_size, count))])
