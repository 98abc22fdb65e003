"""LightningDataModule for the `cnn` system: image classification on real, bundled or procedural data.

Splits are seeded and computed from indices once, so they are identical across runs and DDP ranks;
loaders are `ResumableLoader`s, which shuffle by (seed, epoch), shard across ranks and resume.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.cnn.datasets import (
    DATASET_FACTS,
    DATASET_NAMES,
    TORCHVISION_SETS,
    DataNotFoundError,
    DatasetFacts,
    TransformedSubset,
    batch_augment,
    build_transforms,
    held_out_test_split,
    load_source,
    load_torchvision,
    resolve_facts,
    train_val_split,
)
from datamodules.device_batches import DeviceImageBatches, stack_images, training_device
from datamodules.loading import ResumableLoader
from training.toolkit.errors import ConfigValueError

__all__ = ["DataNotFoundError", "ImageClassificationDM"]


class ImageClassificationDM(pl.LightningDataModule):
    """Train/val/test/predict loaders for one image classification dataset.

    `num_classes`, `input_shape` and `class_names` are known before `setup`; when the config
    states them too, they are checked against the dataset so a model is never built for the wrong data.
    """

    def __init__(
        self,
        dataset: str,
        data_dir: str = "data",
        download: bool = False,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        augment: bool = True,
        drop_last: bool = True,
        procedural: Mapping[str, Any] | None = None,
        image_folder: Mapping[str, Any] | None = None,
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
        class_names: Sequence[str] | None = None,
        shuffle_seed: int | None = None,
        on_device: bool | None = None,
    ) -> None:
        super().__init__()
        if dataset not in DATASET_NAMES:
            raise ConfigValueError(
                f"data.dataset={dataset!r} is not one of {', '.join(DATASET_NAMES)}; pick a data config "
                "(e.g. data=cifar10) or set data.dataset to one of those."
            )
        if on_device is None:  # small sets live on the device; image folders are read per image
            on_device = dataset != "image_folder"
        if on_device and dataset == "image_folder":
            raise ConfigValueError(
                "data.on_device=true holds a whole split as one tensor on the training device, but an "
                "image_folder is read from disk image by image (any size); set data.on_device=false."
            )
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigValueError(f"data.val_fraction={val_fraction} must be in [0, 1).")
        self.save_hyperparameters(logger=False)
        self.hparams.on_device = on_device
        self.dataset = dataset
        self.data_dir = str(data_dir)
        self.procedural = dict(procedural or {})
        self.image_folder = {"train": None, "test": None, "image_size": 32, **dict(image_folder or {})}
        self._declared = {
            "num_classes": num_classes,
            "input_shape": None if input_shape is None else tuple(int(n) for n in input_shape),
            "class_names": None if class_names is None else tuple(str(c) for c in class_names),
        }
        self._facts: DatasetFacts | None = None
        self._source: Dataset | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self._on_device: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # split -> (images, labels)
        if dataset != "image_folder":  # an image folder is read (and checked) on first use
            _ = self.facts

    # ----------------------------------------------------------------- facts known before setup
    @property
    def facts(self) -> DatasetFacts:
        """The dataset's facts, checked once against the values the config states."""
        if self._facts is None:
            facts = resolve_facts(self.dataset, self.procedural, self.image_folder)
            self._check_declared(facts)
            self._facts = facts
        return self._facts

    @property
    def num_classes(self) -> int:
        return self.facts.num_classes  # type: ignore[return-value]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.facts.input_shape  # type: ignore[return-value]

    @property
    def class_names(self) -> list[str]:
        return list(self.facts.class_names)  # type: ignore[arg-type]

    def _check_declared(self, facts: DatasetFacts) -> None:
        """Raise if data.num_classes / input_shape / class_names disagree with the dataset."""
        wrong = [
            f"data.{key}={declared!r} but the dataset has {getattr(facts, key)!r}"
            for key, declared in self._declared.items()
            if declared is not None and declared != getattr(facts, key)
        ]
        if wrong:
            raise ConfigValueError(
                f"The data config disagrees with dataset '{self.dataset}': {'; '.join(wrong)}. These keys "
                "only state facts the model config reads (e.g. ${data.num_classes}); correct them in the "
                "data config or set them to null."
            )

    # ----------------------------------------------------------------------- Lightning hooks
    def prepare_data(self) -> None:
        """Download torchvision datasets when `download` is set (Lightning runs this on rank 0 only)."""
        if self.hparams.download and self.dataset in TORCHVISION_SETS:
            for train in (True, False):
                load_torchvision(self.dataset, self.data_dir, train=train, download=True)

    @staticmethod
    def pixel_normalisation(data: Mapping[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (mean, std) on [0, 1] pixels with which a run of `data` (its config) fed its model:
        what a classifier trained on it expects (e.g. read as an FID feature extractor)."""
        facts = DATASET_FACTS[data["dataset"]]
        repeat = int((data.get("input_shape") or [3])[0]) // len(facts.mean)
        return tuple(facts.mean) * repeat, tuple(facts.std) * repeat  # one-value statistics: every channel

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets `stage` needs; splits come from seeded index permutations."""
        train_tf, eval_tf = build_transforms(self.dataset, self.facts, self.hparams.augment)
        if stage in (None, "fit", "validate") and self.train_set is None:
            source = self._train_source()
            remaining = list(range(len(source)))
            if not self._has_official_test():
                remaining, _ = held_out_test_split(len(source))
            train_idx, val_idx = train_val_split(
                remaining, self.hparams.val_fraction, self.hparams.split_seed
            )
            self.train_set = TransformedSubset(source, train_idx, train_tf)
            self.val_set = TransformedSubset(source, val_idx, eval_tf)
            self._hold_on_device("train", source, train_idx)
            self._hold_on_device("val", source, val_idx)
        if stage in (None, "test", "predict") and self.test_set is None:
            if self._has_official_test():
                official_test = self._load("test")
                self._check_same_classes(official_test)
                self.test_set = TransformedSubset(official_test, range(len(official_test)), eval_tf)
                self._hold_on_device("test", official_test, None)
            else:
                source = self._train_source()
                _, test_idx = held_out_test_split(len(source))
                self.test_set = TransformedSubset(source, test_idx, eval_tf)
                self._hold_on_device("test", source, test_idx)

    def _hold_on_device(self, split: str, source: Dataset, indices: Sequence[int] | None) -> None:
        """With `on_device`: the split's images as one tensor on the device the trainer trains on."""
        if self.hparams.on_device:
            device = training_device(self)
            images, labels = stack_images(source, indices)
            self._on_device[split] = (images.to(device), labels.to(device))

    def _has_official_test(self) -> bool:
        return self.dataset in TORCHVISION_SETS or (
            self.dataset == "image_folder" and self.image_folder["test"] is not None
        )

    def _load(self, split: str) -> Dataset | None:
        return load_source(
            self.dataset, split, self.data_dir, self.hparams.download, self.procedural, self.image_folder
        )

    def _train_source(self) -> Dataset:
        if self._source is None:
            self._source = self._load("train")
        return self._source  # type: ignore[return-value]

    def _check_same_classes(self, test_set: Dataset) -> None:
        """An image-folder test set must have the train folder's classes, or labels would shift."""
        test_classes = list(getattr(test_set, "classes", self.class_names))
        if test_classes != self.class_names:
            raise ConfigValueError(
                f"data.image_folder.test has classes {test_classes} but data.image_folder.train has "
                f"{self.class_names}; both folders need the same class sub-folders."
            )

    # -------------------------------------------------------------------------- dataloaders
    def _loader(
        self, dataset: Dataset | None, train: bool, split: str
    ) -> ResumableLoader | DeviceImageBatches:
        if dataset is None:
            raise RuntimeError("ImageClassificationDM: call setup() before asking for a dataloader.")
        hp = self.hparams
        shuffle_seed = (
            hp.shuffle_seed if hp.shuffle_seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        )
        if split in self._on_device:
            images, labels = self._on_device[split]
            return DeviceImageBatches(
                images,
                labels,
                batch_size=hp.batch_size if train else (hp.eval_batch_size or hp.batch_size),
                shuffle=train,
                seed=shuffle_seed,
                drop_last=hp.drop_last if train else False,
                mean=self.facts.mean,
                std=self.facts.std,
                augment=batch_augment(self.dataset, self.facts) if train and hp.augment else None,
            )
        return ResumableLoader(
            dataset,
            batch_size=hp.batch_size if train else (hp.eval_batch_size or hp.batch_size),
            shuffle=train,
            seed=shuffle_seed,
            drop_last=hp.drop_last if train else False,
            num_workers=hp.num_workers,
            pin_memory=hp.pin_memory,
            persistent_workers=hp.persistent_workers and hp.num_workers > 0,
        )

    def train_dataloader(self) -> ResumableLoader | DeviceImageBatches:
        hp = self.hparams
        if self.train_set is not None and hp.drop_last and len(self.train_set) < hp.batch_size:
            raise ConfigValueError(
                f"data.batch_size={hp.batch_size} is more than the {len(self.train_set)} training images of "
                f"dataset '{self.dataset}' (what the val/test shares leave), so data.drop_last=true leaves no "
                "training batch; lower data.batch_size, or add images."
            )
        return self._loader(self.train_set, train=True, split="train")

    def val_dataloader(self) -> ResumableLoader | DeviceImageBatches | list:
        if self.val_set is not None and len(self.val_set) == 0:
            return []  # val_fraction=0: no validation loop
        return self._loader(self.val_set, train=False, split="val")

    def test_dataloader(self) -> ResumableLoader | DeviceImageBatches:
        return self._loader(self.test_set, train=False, split="test")

    def predict_dataloader(self) -> DataLoader:
        # A plain loader: Lightning re-creates predict loaders to track batch indices.
        hp = self.hparams
        if self.test_set is None:
            raise RuntimeError("ImageClassificationDM: call setup() before asking for a dataloader.")
        return DataLoader(
            self.test_set,
            batch_size=hp.eval_batch_size or hp.batch_size,
            shuffle=False,
            num_workers=hp.num_workers,
            pin_memory=hp.pin_memory,
        )
