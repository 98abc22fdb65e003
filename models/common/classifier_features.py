"""`ClassifierFeatures`: a classifier trained in this codebase as an offline FID/KID feature extractor.

Where Inception weights are not at hand, a CNN trained on the domain's own labels (e.g. the ukiyoe scene
classes, `experiment=ukiyoe_features`) gives the representation: its penultimate activations, the input of
its last `nn.Linear`, caught with a forward pre-hook so any `ImageClassifierModel` net (small_cnn, resnet,
densenet) works unchanged. Images are read as the classifier was trained: resized to its training
resolution and normalised like its datamodule normalised them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import hydra
import torch
import torch.nn.functional as F
from torch import nn

from models.common.feature_extractors import ImageFeatures
from training.toolkit.checkpoints import stored_config
from training.toolkit.errors import UserError
from training.toolkit.stage_checkpoint import load_trained_module


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
        """Frozen extractor from an `ImageClassifierModel` run's checkpoint (`config_key` names the key that gave
        `path`, for errors); resolution and normalisation come from that run's stored `data` config."""
        classifier = load_trained_module(path, config_key)
        config = stored_config(path, f"{config_key}={path}") or {}
        if not isinstance(getattr(classifier, "net", None), nn.Module):
            raise UserError(
                f"{config_key}={path} holds a {type(classifier).__name__} ({config.get('name')} run), not an image "
                "classifier (a module whose `net` ends in an nn.Linear): point it at a classifier's checkpoint, "
                "e.g. of `experiment=ukiyoe_features`."
            )
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
    """Per-channel (mean, std) on [0, 1] pixels with which a run's datamodule fed its 3-channel classifier,
    as that DataModule class states it (`pixel_normalisation(data_config)`); `source` names the checkpoint."""
    target = str(data.get("_target_", ""))
    channels = int((data.get("input_shape") or [3])[0])
    if channels != 3:
        raise UserError(
            f"{source}: the classifier reads {channels}-channel images; FID/KID features need one trained on "
            "RGB images (e.g. `experiment=ukiyoe_features`)."
        )
    try:
        normalisation = hydra.utils.get_class(target).pixel_normalisation
    except Exception:  # no such class, or one that does not say how it normalises
        raise UserError(
            f"{source}: its run trained on data `{target}`, whose input normalisation ClassifierFeatures does not "
            "know (its DataModule has no `pixel_normalisation`); use a classifier trained on ukiyoe or cnn image "
            "data (e.g. `experiment=ukiyoe_features`)."
        ) from None
    return normalisation(data)
