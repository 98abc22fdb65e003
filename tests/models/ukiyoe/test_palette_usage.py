"""PaletteUsage: how many palette colours the generator's images use, and the entropy of their shares."""

from __future__ import annotations

import math

import pytest
import torch

from models.ukiyoe.nets.palette import GumbelPalette
from models.ukiyoe.palette_usage import PaletteUsage


def test_palette_usage_counts_colours_and_their_entropy_over_batches() -> None:
    palette, usage = GumbelPalette(4).eval(), PaletteUsage(4)
    logits = torch.full((2, 4, 2, 2), -5.0)
    logits[:, 1] = 5.0
    logits[0, 3, 0, 0] = 10.0  # one pixel of eight picks colour 3
    usage.update(palette(logits)[1])
    usage.update(palette(logits)[1])  # the shares are over every pixel seen: still 7/8 and 1/8
    result = usage.compute()
    assert float(result["colours_used"]) == 2.0
    expected = -(7 / 8 * math.log2(7 / 8) + 1 / 8 * math.log2(1 / 8))
    assert float(result["entropy_bits"]) == pytest.approx(expected, rel=1e-5)
