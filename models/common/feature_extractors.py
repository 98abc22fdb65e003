"""Feature extractors for FID/KID: modules mapping uint8 images (B, 3, H, W) to float features (B, D).

Inception v3 (the published-FID network) where the user has its weights on disk; otherwise a system's own
trained extractor (design: encoder + abstractor). `select_feature_extractor` picks one from config, so every
generative system names its choice the same way (`feature: inception | <trained name>`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from training.toolkit.errors import UserError

INCEPTION = "inception"
INCEPTION_WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"


class ImageFeatures(nn.Module):
    """A feature extractor for FID/KID: `forward(uint8 (B, 3, H, W)) -> float (B, num_features)`.

    `name` travels with the numbers: distances measured with different extractors are not comparable.
    """

    name: str
    num_features: int


def has_torch_fidelity() -> bool:
    """Whether torchmetrics can build its Inception v3 (the network comes from `torch-fidelity`)."""
    return importlib.util.find_spec("torch_fidelity") is not None


class InceptionFeatures(ImageFeatures):
    """torchmetrics' FID Inception v3 (torch-fidelity's port of the 2015 TF graph), 2048-d pool features,
    loaded from a local weights file only: nothing is downloaded."""

    name = INCEPTION
    num_features = 2048

    def __init__(self, weights_path: str | Path, key: str = "inception_weights") -> None:
        super().__init__()
        if not has_torch_fidelity():
            raise UserError(
                f"{key}: Inception features need the `torch-fidelity` package (`pip install torch-fidelity`), "
                "or choose a feature extractor trained in this codebase instead of `inception`."
            )
        if not Path(weights_path).is_file():
            raise UserError(
                f"{key}={weights_path}: no Inception weights file there. Download {INCEPTION_WEIGHTS_URL} on a "
                "machine with internet, copy it to that path, or choose a feature extractor trained in this "
                "codebase instead of `inception`."
            )
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.inception = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=[str(self.num_features)],
            feature_extractor_weights_path=str(weights_path),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.inception(images)


def select_feature_extractor(
    feature: str,
    *,
    inception_weights: str | Path | None,
    trained: Mapping[str, Callable[[], ImageFeatures]],
    config_key: str,
) -> ImageFeatures:
    """The extractor `<config_key>.feature` names: `inception` (reads `<config_key>.inception_weights`) or one
    of `trained`, each a builder so that only the chosen one loads its checkpoints."""
    if feature == INCEPTION:
        if inception_weights is None:
            raise UserError(
                f"{config_key}.feature=inception needs {config_key}.inception_weights=PATH, a local copy of "
                f"{INCEPTION_WEIGHTS_URL}; or set {config_key}.feature to one of {', '.join(trained)}."
            )
        return InceptionFeatures(inception_weights, key=f"{config_key}.inception_weights")
    if feature not in trained:
        raise UserError(
            f"{config_key}.feature={feature} is not a feature extractor; choose one of "
            f"{', '.join([INCEPTION, *trained])}."
        )
    return trained[feature]()
