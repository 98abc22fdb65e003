"""The encoder's heads and how they read as the schema's tensors: a hard F_Tensor or the soft structure."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from models.design.schema import (
    COLOR_ID_RGB,
    F_CHANNELS,
    F_COLOR,
    F_HIERARCHY,
    F_IMAGE,
    F_TEXT,
    color_features,
)


class EncoderOutput(NamedTuple):
    """The encoder's heads at the input's resolution."""

    text: torch.Tensor  # (B, 1, H, W) text-mask logits
    image: torch.Tensor  # (B, 1, H, W) image-mask logits
    color: torch.Tensor  # (B, NUM_COLOR_IDS, H, W) colour-ID logits
    hierarchy: torch.Tensor  # (B, 1, H, W) hierarchy value, raw (targets lie in [0, 1])


class ColorNamingPrior(nn.Module):
    """Colour-ID logits that name each pixel's colour by the fixed vocabulary: −d² / (2 width²), d the RGB
    distance (uint8 steps) from the pixel to each ID's colour. Added to the learned colour logits, it names
    every pixel drawn in a vocabulary colour (all of them outside image blocks) before any training, so the
    network only learns the exceptions (shaded image blocks). The vocabulary's nearest two colours are 10
    steps apart: a width of 2 steps separates them by 12.5 in logits, and the prior stays differentiable in
    the image (phase 3 reads generated images through the encoder)."""

    def __init__(self, width: float) -> None:
        super().__init__()
        self.scale = 0.5 / width**2
        # each ID's colour in uint8 steps from mid-grey, as the models' [-1, 1] images read × 127.5
        self.register_buffer("colors", torch.from_numpy(COLOR_ID_RGB).float() - 127.5, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] -> logits (B, NUM_COLOR_IDS, H, W)."""
        pixels = images.float() * 127.5
        distance2 = (
            pixels.pow(2).sum(1, keepdim=True)
            - 2 * torch.einsum("bchw,kc->bkhw", pixels, self.colors)
            + self.colors.pow(2).sum(1)[None, :, None, None]
        )
        return -self.scale * distance2.clamp_min(0.0)


def hard_f_tensor(output: EncoderOutput) -> torch.Tensor:
    """F_Tensor (B, 4, H, W) in the schema's layout: masks where probability > 0.5, arg-max colour ID (as a
    float), hierarchy clamped to [0, 1]."""
    channels = {
        F_TEXT: (output.text > 0).float(),
        F_IMAGE: (output.image > 0).float(),
        F_COLOR: output.color.max(dim=1, keepdim=True).indices.float(),  # 8x faster than argmax on CPU
        F_HIERARCHY: output.hierarchy.float().clamp(0.0, 1.0),
    }
    return torch.cat([channels[index] for index in range(F_CHANNELS)], dim=1)


def soft_structure(output: EncoderOutput) -> torch.Tensor:
    """Differentiable (B, STRUCTURE_CHANNELS, H, W) in `schema.structure_channels`' layout: mask
    probabilities, hierarchy clamped to [0, 1], the colour features expected under the colour-ID probabilities."""
    return torch.cat(
        [
            torch.sigmoid(output.text.float()),
            torch.sigmoid(output.image.float()),
            output.hierarchy.float().clamp(0.0, 1.0),
            color_features(torch.softmax(output.color.float(), dim=1)),
        ],
        dim=1,
    )
