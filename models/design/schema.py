"""The design system's vocabulary and tensor layout, shared by the renderer, the data and the models.

It lives on the models' side so that the plain networks (`models.design.nets`) import no data code; the
data side (`datamodules.design`) imports it from here.

A sample is a dict (a batch stacks them):
- `image`: uint8 (3, H, W) from the dataset; models see float images in [-1, 1] (`to_model_image`).
- `f_tensor`: float32 (4, H, W), channels `F_TEXT`, `F_IMAGE` (masks in {0, 1}), `F_COLOR`
  (colour-ID as an integer-valued float in [0, NUM_COLOR_IDS)), `F_HIERARCHY` (in [0, 1]).
- `goal`, `format`: int64 indices into GOALS / FORMATS; `tone`: float32 (len(TONE_AXES),) in [0, 1];
  `grammar`: float32 (len(GRAMMAR_NAMES),) in [0, 1]; `index`: int64, the sample's index in its split.
"""

from __future__ import annotations

import torch

GOALS = ("inform", "promote", "announce", "invite", "sell")
# name -> width:height of the design, letterboxed into the square canvas
FORMATS = {"poster": (3, 4), "square": (1, 1), "banner": (3, 1), "story": (9, 16)}
FORMAT_NAMES = tuple(FORMATS)
TONE_AXES = ("energy", "seriousness")  # 0 calm -> 1 energetic; 0 playful -> 1 serious
GRAMMAR_NAMES = ("alignment", "contrast", "balance", "hierarchy")

PALETTE_SIZE = 5  # element colours per design
COLOR_OUTSIDE = 0  # the letterbox around the design's format
COLOR_BACKGROUND = 1  # the design's background
NUM_COLOR_IDS = 2 + PALETTE_SIZE  # outside, background, then palette entries 0..K-1 as 2..K+1

# hierarchy map values: headline > subhead > image > body > background
HIERARCHY = {"headline": 1.0, "subhead": 0.8, "image": 0.6, "body": 0.4, "background": 0.0}

F_TEXT, F_IMAGE, F_COLOR, F_HIERARCHY = range(4)
F_CHANNELS = 4


def to_model_image(image: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1] (the range every design model reads and the decoder writes)."""
    return image.float().div(127.5).sub(1.0)


def color_ids(f_tensor: torch.Tensor) -> torch.Tensor:
    """The colour-ID channel as int64 class indices, (B, H, W)."""
    return f_tensor[:, F_COLOR].round().long()


STRUCTURE_CHANNELS = 3 + NUM_COLOR_IDS  # text, image, hierarchy, one-hot colour-ID


def structure_channels(f_tensor: torch.Tensor) -> torch.Tensor:
    """F_Tensor (B, 4, H, W) -> the abstractor's input (B, STRUCTURE_CHANNELS, H, W): text, image and
    hierarchy as they are, the colour-ID one-hot. The encoder's `soft_structure` gives the same layout
    with probabilities, so the abstractor also reads the encoder's differentiable output (phase 3)."""
    one_hot = torch.nn.functional.one_hot(color_ids(f_tensor), NUM_COLOR_IDS).permute(0, 3, 1, 2)
    return torch.cat([f_tensor[:, [F_TEXT, F_IMAGE, F_HIERARCHY]], one_hot.to(f_tensor.dtype)], dim=1)
