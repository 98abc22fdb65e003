"""`DesignFeatures`: the design system's trained FID/KID feature extractor, and the abstractor's reading of images.

A design image goes through the trained encoder's differentiable structure (`EncoderModel.soft_structure`)
into the trained abstractor: its FC-512 embedding is the feature (what an Inception network is for natural
images: a representation trained on this domain), and its heads read goal and format back from generated
samples, which is how conditioning fidelity is measured.
"""

from __future__ import annotations

import os

import torch

from models.common.feature_extractors import ImageFeatures
from models.design.abstractor.module import AbstractorModel
from models.design.encoder.module import EncoderModel
from models.design.encoder.reading import resize_image, trained_resolution
from models.design.nets.abstractor import FEATURE_DIM, Abstractor
from models.design.schema import to_model_image
from training.toolkit.stage_checkpoint import load_trained_module


class DesignFeatures(ImageFeatures):
    """uint8 design images (B, 3, H, W) -> the abstractor's 512-d features of the encoder's soft structure.

    Images are resized (bilinear, antialiased) to `resolution` when given and different: the encoder is
    fully convolutional, but what it learned holds at the scale it was trained at.
    """

    name = "design"
    num_features = FEATURE_DIM
    fields = ("goal", "format")  # the metadata `read` names (conditioning fidelity reads them)

    def __init__(self, encoder: EncoderModel, abstractor: Abstractor, resolution: int | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.abstractor = abstractor
        self.resolution = resolution

    @classmethod
    def from_checkpoints(
        cls,
        encoder_checkpoint: str | os.PathLike,
        abstractor_checkpoint: str | os.PathLike,
        config_key: str = "model.quality",
    ) -> DesignFeatures:
        """Frozen extractor from an encoder run's and an abstractor run's checkpoints, reading images at the
        encoder run's `data.resolution` (`config_key` names the config holding `encoder_checkpoint` /
        `abstractor_checkpoint`, for errors)."""
        encoder = load_trained_module(
            encoder_checkpoint, f"{config_key}.encoder_checkpoint", expected=EncoderModel
        )
        abstractor = load_trained_module(
            abstractor_checkpoint, f"{config_key}.abstractor_checkpoint", expected=AbstractorModel
        )
        resolution = trained_resolution(encoder_checkpoint)
        return cls(encoder, abstractor.net, resolution=resolution).eval().requires_grad_(False)

    def structure(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's soft structure (B, STRUCTURE_CHANNELS, R, R) of uint8 images."""
        return self.encoder.soft_structure(resize_image(to_model_image(images), self.resolution))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.abstractor.features(self.structure(images))

    def read(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The abstractor's reading of uint8 images: goal and format logits, tone and grammar in [0, 1]."""
        return self.abstractor(self.structure(images))
