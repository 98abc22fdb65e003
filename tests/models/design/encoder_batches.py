"""Tiny synthetic design batches for the encoder tests: a background, one image block, one text block.

The F_Tensor is in the schema's layout and the image is a function of it (each colour ID is drawn in its
vocabulary colour, the image block is textured), so a network can learn to read it back.
"""

from __future__ import annotations

import torch

from models.design.nets.encoder_heads import EncoderOutput
from models.design.schema import (
    COLOR_ID_RGB,
    F_COLOR,
    F_HIERARCHY,
    F_IMAGE,
    F_TEXT,
    HIERARCHY,
    NUM_COLOR_IDS,
    to_model_image,
)

COLOR_RGB = to_model_image(torch.from_numpy(COLOR_ID_RGB))  # (NUM_COLOR_IDS, 3) in [-1, 1]
BACKGROUND_COLOR, IMAGE_COLOR, TEXT_COLOR = 1, 200, 9  # IDs: white, a vivid colour, black


def synthetic_design_batch(batch_size: int = 4, size: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    """`{"image": float (B, 3, size, size) in [-1, 1], "f_tensor": (B, 4, size, size)}`."""
    generator = torch.Generator().manual_seed(seed)
    f_tensor = torch.zeros(batch_size, 4, size, size)
    f_tensor[:, F_COLOR] = BACKGROUND_COLOR
    for sample in range(batch_size):
        top, left = torch.randint(0, size // 2, (2,), generator=generator).tolist()
        height, width = torch.randint(size // 4, size // 2, (2,), generator=generator).tolist()
        block = f_tensor[sample, :, top : top + height, left : left + width]
        block[F_IMAGE], block[F_COLOR], block[F_HIERARCHY] = 1.0, IMAGE_COLOR, HIERARCHY["image"]
        row = int(torch.randint(0, size - 3, (1,), generator=generator))
        line = f_tensor[sample, :, row : row + 3, 2 : size - 2]  # a headline drawn over the image block
        line[F_TEXT], line[F_IMAGE], line[F_COLOR], line[F_HIERARCHY] = (
            1.0,
            0.0,
            TEXT_COLOR,
            HIERARCHY["headline"],
        )
    image = COLOR_RGB[f_tensor[:, F_COLOR].long()].permute(0, 3, 1, 2).clone()
    texture = 0.3 * torch.rand(batch_size, 3, size, size, generator=generator)
    image += texture * f_tensor[:, F_IMAGE : F_IMAGE + 1]
    return {"image": image.clamp(-1.0, 1.0), "f_tensor": f_tensor}


def confident_heads(f_tensor: torch.Tensor, scale: float = 30.0) -> EncoderOutput:
    """Heads that read `f_tensor` back with logits of size `scale`."""
    one_hot = torch.nn.functional.one_hot(f_tensor[:, F_COLOR].long(), NUM_COLOR_IDS).permute(0, 3, 1, 2)
    return EncoderOutput(
        text=scale * (2 * f_tensor[:, F_TEXT : F_TEXT + 1] - 1),
        image=scale * (2 * f_tensor[:, F_IMAGE : F_IMAGE + 1] - 1),
        color=scale * one_hot.float(),
        hierarchy=f_tensor[:, F_HIERARCHY : F_HIERARCHY + 1].clone(),
    )
