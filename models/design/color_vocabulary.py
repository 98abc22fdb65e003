"""The colour vocabulary: a fixed list of colours shared by every design, so a colour ID means a colour.

The renderer snaps each design's background and palette to this list and the F_Tensor's colour-ID map
stores, per pixel, ID 0 for the letterbox outside the format (drawn as OUTSIDE_RGB, no vocabulary
colour) or ID v + 1 for vocabulary entry v. There is no separate background ID: the background is just
its vocabulary colour, because its hue and lightness are what the goal and tone choose (its role, the
page behind everything, is already in the other channels: no text, no image, hierarchy 0).

Entries vary on the axes the generator itself varies, in this documented order:
- LEVELS = 9 WCAG luminance levels Y_k = 1.05 · 21^(-k/8) − 0.05 (k = 0 white … 8 black), equally spaced
  in WCAG contrast: neighbouring levels differ by the ratio 21^(1/8) ≈ 1.46, so every contrast band of
  the palette (datamodules/design/colors.py) holds a whole number of steps and survives snapping.
- entries 0..8: the greys at levels 0..8;
- then for each (HLS saturation, number of hues) in SATURATIONS, (0.2, 6) muted, (0.5, 12) medium,
  (0.85, 12) vivid, for each hue h = i / n (0 red, 1/12 orange, 7/12 blue, 9/12 violet …), the 7 inner
  levels 1..7 (at levels 0 and 8 every hue is white or black). Muted colours get every other hue:
  hue matters less as saturation falls, and the IDs must fit the F_Tensor's uint8 storage.
That is 9 + (6 + 12 + 12) · 7 = 219 colours (220 IDs). 12 hues put the goals' hues (0.58, 0.07, 0.96,
0.78, 0.14) on 5 distinct vocabulary hues; three saturations and the greys let the tone's vividness and
neutrality show; all uint8 colours differ (nearest pair 2.5 CIELAB units apart, about one
just-noticeable difference).

Each colour is the HLS colour of its hue and saturation whose luminance is nearest its level
(`color_science.color_with_luminance`). Colours are compared, and snapped, in CIELAB.
"""

from __future__ import annotations

import numpy as np

from models.design.color_science import RGB, cielab, color_with_luminance, luminance

LEVELS = 9
MAX_CONTRAST = 21.0  # white on black
# WCAG contrast ratio ranges against the background of the palette's entries, most to least legible
# (datamodules/design/colors.py); each holds whole level steps: 6, 4-5, 3, 2 and 1
CONTRAST_BANDS = ((7.0, 11.0), (4.5, 7.0), (3.0, 4.5), (1.8, 3.0), (1.15, 1.8))
LEVEL_LUMINANCE = tuple(1.05 * MAX_CONTRAST ** (-k / (LEVELS - 1)) - 0.05 for k in range(LEVELS))
SATURATIONS = ((0.2, 6), (0.5, 12), (0.85, 12))  # (HLS saturation, number of hues)
# the letterbox (luminance 0.22, between levels 3 and 4): no vocabulary colour
OUTSIDE_RGB: RGB = (128, 128, 128)


def _entries() -> tuple[tuple[float | None, float, int], ...]:
    """(hue or None for grey, saturation, level) of each entry, in the documented order."""
    greys = [(None, 0.0, level) for level in range(LEVELS)]
    chromatic = [
        (hue / hues, saturation, level)
        for saturation, hues in SATURATIONS
        for hue in range(hues)
        for level in range(1, LEVELS - 1)
    ]
    return tuple(greys + chromatic)


ENTRIES = _entries()
VOCABULARY_SIZE = len(ENTRIES)
VOCABULARY_RGB = np.array(
    [
        color_with_luminance(hue or 0.0, saturation, LEVEL_LUMINANCE[level])
        for hue, saturation, level in ENTRIES
    ],
    dtype=np.uint8,
)
VOCABULARY_LAB = cielab(VOCABULARY_RGB)
VOCABULARY_LUMINANCE = luminance(VOCABULARY_RGB)
ENTRY_OF_RGB = {tuple(int(c) for c in rgb): entry for entry, rgb in enumerate(VOCABULARY_RGB)}

assert len(ENTRY_OF_RGB) == VOCABULARY_SIZE, "two vocabulary entries share a uint8 colour"
