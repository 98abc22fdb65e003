"""The ukiyoe system's vocabulary shared by the model and the data: the woodblock pigments.

The procedural prints (`datamodules.ukiyoe.procedural`) paint every pixel in one of `PIGMENTS`, and the
generator's `GumbelPalette` starts from them. Plain Python, so the print generator loads it without torch.
"""

from __future__ import annotations

# Traditional woodblock pigments (sRGB). The first six are the ones every palette starts from.
PIGMENTS: dict[str, tuple[int, int, int]] = {
    "prussian_blue": (20, 62, 118),  # bero-ai, the imported Berlin blue of Hokusai's waves
    "indigo": (38, 46, 72),  # ai, plant indigo: deep greyish blue
    "vermilion": (206, 64, 42),  # shu
    "ochre": (206, 152, 70),  # odo
    "sumi": (30, 28, 28),  # carbon ink of the key block
    "paper": (240, 230, 206),  # unprinted washi
    "light_blue": (126, 164, 190),  # usu-ai, diluted indigo of skies and wave stripes
    "rokusho": (104, 138, 104),  # verdigris green
    "beni": (196, 70, 96),  # safflower pink-red
    "tobi": (122, 74, 52),  # kite brown
    "nezumi": (134, 128, 120),  # mouse grey
}
