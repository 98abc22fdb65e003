"""`ClassifierFeatures`: a classifier trained in this codebase as an offline FID/KID feature extractor.

Where Inception weights are not at hand, a CNN trained on the domain's own labels (e.g. the ukiyoe scene
classes, `experiment=ukiyoe_features`) gives the representation: its penultimate activations, the input of
its last `nn.Linear`, caught with a forward pre-hook so any `ImageClassifier` net (small_cnn, resnet,
densenet) works unchanged. Images are read as the classifier was trained: resized to its training
resolution and normalised like its datamodule normalised them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from datamodules.image_datasets import DATASET_FACTS
from models.cnn.classifier import ImageClassifier
from models.common.feature_extractors import ImageFeatures
from training.checkpoints import META_KEY, load_checkpoint_file
from training.errors import UserError
from training.stage_checkpoint import load_trained_module

# Datamodules whose images are x / 127.5 - 1, i.e. ([0, 1] - 0.5) / 0.5.
SIGNED_UNIT_DATAMODULES = ("datamodules.ukiyoe.",)
CNN_DATAMODULE = "datamodules.cnn.ImageClassificationDataModule"


class ClassifierFeatures(ImageFeatures):
    """uint8 RGB images (B, 3, H, W) -> the input of `net`'s last `nn.Linear` (B, in_features).

    `resolution` (H, W) is the size the net was trained at (bilinear, antialiased resize; None: as given);
    `mean` / `std` normalise [0, 1] pixels per channel as the training data was normalised.
    """

    def __init__(
        self,
        net: nn.Module,
        name: str,
        resolution: tuple[int, int] | None,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        super().__init__()
        self.net = net
        self.head = last_linear(net)
        self.name = name
        self.num_features = self.head.in_features
        self.resolution = resolution
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, config_key: str = "model.quality.features_checkpoint"
    ) -> ClassifierFeatures:
        """Frozen extractor from an `ImageClassifier` run's checkpoint (`config_key` names the key that gave
        `path`, for errors); resolution and normalisation come from that run's stored `data` config."""
        classifier = load_trained_module(path, config_key, expected=ImageClassifier)
        config = (load_checkpoint_file(path).get(META_KEY) or {}).get("config") or {}
        data = config.get("data") or {}
        mean, std = input_normalisation(data, f"{config_key}={path}")
        return cls(
            classifier.net,
            name=f"classifier:{config.get('name', 'unnamed')}",
            resolution=trained_resolution(data),
            mean=mean,
            std=std,
        ).eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255
        if self.resolution is not None and tuple(x.shape[-2:]) != self.resolution:
            x = F.interpolate(x, size=self.resolution, mode="bilinear", antialias=True, align_corners=False)
        captured: list[torch.Tensor] = []
        handle = self.head.register_forward_pre_hook(lambda _, inputs: captured.append(inputs[0]))
        try:
            self.net((x - self.mean) / self.std)
        finally:
            handle.remove()
        return captured[-1].flatten(1)


def last_linear(net: nn.Module) -> nn.Linear:
    """The last-registered `nn.Linear` of `net`: the classification head of every net in models/cnn."""
    linears = [module for module in net.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(net).__name__} has no nn.Linear head to take features from.")
    return linears[-1]


def trained_resolution(data: Mapping[str, Any]) -> tuple[int, int] | None:
    """(H, W) of a run's `data.input_shape` ([C, H, W]) or `data.resolution`; None if neither is recorded."""
    if data.get("input_shape"):
        _, height, width = data["input_shape"]
        return int(height), int(width)
    if data.get("resolution"):
        return int(data["resolution"]), int(data["resolution"])
    return None


def input_normalisation(data: Mapping[str, Any], source: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) on [0, 1] pixels with which a run's datamodule fed its 3-channel classifier;
    `source` names the checkpoint, for errors."""
    target = str(data.get("_target_", ""))
    channels = int((data.get("input_shape") or [3])[0])
    if channels != 3:
        raise UserError(
            f"{source}: the classifier reads {channels}-channel images; FID/KID features need one trained on "
            "RGB images (e.g. `experiment=ukiyoe_features`)."
        )
    if target.startswith(SIGNED_UNIT_DATAMODULES):
        return (0.5,) * 3, (0.5,) * 3
    if target == CNN_DATAMODULE:
        facts = DATASET_FACTS[data["dataset"]]
        repeat = 3 // len(facts.mean)  # single-value statistics (procedural) apply to every channel
        return tuple(facts.mean) * repeat, tuple(facts.std) * repeat
    raise UserError(
        f"{source}: its run trained on data `{target}`, whose input normalisation ClassifierFeatures does not "
        f"know; use a classifier trained on {', '.join(p.rstrip('.') for p in SIGNED_UNIT_DATAMODULES)} or "
        f"{CNN_DATAMODULE} data (e.g. `experiment=ukiyoe_features`)."
    )
