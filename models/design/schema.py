"""The design system's vocabulary and tensor layout, shared by the renderer, the data and the models.

It lives on the models' side so that the plain networks (`models.design.nets`) import no data code; the
data side (`datamodules.design`) imports it from here.

A sample is a dict (a batch stacks them):
- `image`: uint8 (3, H, W) from the dataset; models see float images in [-1, 1] (`to_model_image`).
- `f_tensor`: float32 (4, H, W), channels `F_TEXT`, `F_IMAGE` (masks in {0, 1}), `F_COLOR`
  (colour-ID as an integer-valued float in [0, NUM_COLOR_IDS): COLOR_OUTSIDE or 1 + an entry of the
  colour vocabulary, `color_vocabulary.py`), `F_HIERARCHY` (in [0, 1]).
- `goal`, `format`: int64 indices into GOALS / FORMATS; `tone`: float32 (len(TONE_AXES),) in [0, 1];
  `grammar`: float32 (len(GRAMMAR_NAMES),) in [0, 1]; `index`: int64, the sample's index in its split.
"""

from __future__ import annotations

import numpy as np
import torch

from models.design.color_vocabulary import OUTSIDE_RGB, VOCABULARY_LAB, VOCABULARY_LUMINANCE, VOCABULARY_RGB

GOALS = ("inform", "promote", "announce", "invite", "sell")
# name -> width:height of the design, letterboxed into the square canvas
FORMATS = {"poster": (3, 4), "square": (1, 1), "banner": (3, 1), "story": (9, 16)}
FORMAT_NAMES = tuple(FORMATS)
TONE_AXES = ("energy", "seriousness")  # 0 calm -> 1 energetic; 0 playful -> 1 serious
TONE_MEDIAN = 0.5  # each axis is drawn uniform in [0, 1]: the constant with the least expected MAE
GRAMMAR_NAMES = ("alignment", "contrast", "balance", "hierarchy")

COLOR_OUTSIDE = 0  # the letterbox around the design's format; ID v + 1 is vocabulary entry v
NUM_COLOR_IDS = 1 + len(VOCABULARY_RGB)
COLOR_ID_RGB = np.concatenate(
    [np.array([OUTSIDE_RGB], dtype=np.uint8), VOCABULARY_RGB]
)  # what each ID looks like

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


# What the abstractor reads of a colour ID: its meaning as fixed coordinates, not its number. CIELAB
# lightness and opponent axes (hue and vividness as a direction and length in a*, b*), the WCAG contrast
# level ln((Y + 0.05) / 0.05) / ln 21 (text-to-background contrast is a difference of it), and a flag
# for the letterbox (all other coordinates 0 there).
COLOR_FEATURES = ("lightness", "green_red", "blue_yellow", "contrast_level", "outside")
COLOR_FEATURE_TABLE = torch.cat(
    [
        torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]]),
        torch.cat(
            [
                torch.from_numpy(VOCABULARY_LAB / 100.0),
                torch.from_numpy(np.log((VOCABULARY_LUMINANCE + 0.05) / 0.05) / np.log(21.0))[:, None],
                torch.zeros(len(VOCABULARY_LAB), 1, dtype=torch.float64),
            ],
            dim=1,
        ),
    ]
).float()  # (NUM_COLOR_IDS, len(COLOR_FEATURES))
STRUCTURE_CHANNELS = 3 + len(COLOR_FEATURES)  # text, image, hierarchy, colour features


def structure_channels(f_tensor: torch.Tensor) -> torch.Tensor:
    """F_Tensor (B, 4, H, W) -> the abstractor's input (B, STRUCTURE_CHANNELS, H, W): text, image and
    hierarchy as they are, then each pixel's colour ID as its COLOR_FEATURES (a table look-up: what
    `color_features` gives for a one-hot, without building the one-hot over every ID)."""
    features = COLOR_FEATURE_TABLE.to(f_tensor)[color_ids(f_tensor)].permute(0, 3, 1, 2)
    return torch.cat([f_tensor[:, [F_TEXT, F_IMAGE, F_HIERARCHY]], features], dim=1)


def color_features(color_probabilities: torch.Tensor) -> torch.Tensor:
    """Colour-ID probabilities (B, NUM_COLOR_IDS, H, W) -> their expected COLOR_FEATURES (B, 5, H, W): how
    the encoder's soft output reads in `structure_channels`' layout, differentiably."""
    return torch.einsum("bchw,cf->bfhw", color_probabilities, COLOR_FEATURE_TABLE.to(color_probabilities))
