"""The colour vocabulary: its documented size and order, distinct colours, and what the abstractor reads of it."""

from __future__ import annotations

import numpy as np
import torch

from models.design.color_science import contrast_ratio
from models.design.color_vocabulary import (
    ENTRIES,
    LEVEL_LUMINANCE,
    LEVELS,
    OUTSIDE_RGB,
    VOCABULARY_LUMINANCE,
    VOCABULARY_RGB,
    VOCABULARY_SIZE,
)
from models.design.nets.encoder_heads import EncoderOutput, soft_structure
from models.design.schema import (
    COLOR_FEATURES,
    F_COLOR,
    NUM_COLOR_IDS,
    STRUCTURE_CHANNELS,
    structure_channels,
)


def test_size_and_documented_order() -> None:
    assert VOCABULARY_SIZE == 219 and NUM_COLOR_IDS == 220 <= 256  # IDs are stored as uint8
    greys = VOCABULARY_RGB[:LEVELS]
    assert (greys == greys[:, :1]).all() and (np.diff(greys[:, 0].astype(int)) < 0).all()  # white .. black
    assert [entry[:2] for entry in ENTRIES[LEVELS : LEVELS + 7]] == [(0.0, 0.2)] * 7  # muted red, levels 1..7
    assert [entry[2] for entry in ENTRIES[LEVELS : LEVELS + 7]] == list(range(1, 8))
    counts = {saturation: sum(entry[1] == saturation for entry in ENTRIES) for saturation in (0.2, 0.5, 0.85)}
    assert counts == {0.2: 6 * 7, 0.5: 12 * 7, 0.85: 12 * 7}


def test_colours_are_distinct_and_sit_on_their_luminance_levels() -> None:
    assert len({tuple(rgb) for rgb in VOCABULARY_RGB.tolist()} | {OUTSIDE_RGB}) == VOCABULARY_SIZE + 1
    levels = np.array(LEVEL_LUMINANCE)[[entry[2] for entry in ENTRIES]]
    assert np.abs(np.log((VOCABULARY_LUMINANCE + 0.05) / (levels + 0.05))).max() < 0.02
    # equal steps in WCAG contrast between neighbouring levels
    steps = [contrast_ratio(VOCABULARY_RGB[k], VOCABULARY_RGB[k + 1]) for k in range(LEVELS - 1)]
    np.testing.assert_allclose(steps, 21 ** (1 / 8), rtol=0.02)


def test_true_and_soft_structure_agree_for_a_one_hot_reading() -> None:
    generator = torch.Generator().manual_seed(0)
    f_tensor = torch.rand(2, 4, 6, 5, generator=generator)
    f_tensor[:, F_COLOR] = torch.randint(0, NUM_COLOR_IDS, (2, 6, 5), generator=generator).float()
    one_hot = torch.nn.functional.one_hot(f_tensor[:, F_COLOR].long(), NUM_COLOR_IDS).permute(0, 3, 1, 2)
    logits = torch.logit(f_tensor[:, :2].clamp(1e-6, 1 - 1e-6))  # sigmoid gives the masks back
    output = EncoderOutput(logits[:, :1], logits[:, 1:], 1e4 * one_hot.float(), f_tensor[:, 3:])
    true = structure_channels(f_tensor)
    assert true.shape == (2, STRUCTURE_CHANNELS, 6, 5) and 3 + len(COLOR_FEATURES) == STRUCTURE_CHANNELS
    torch.testing.assert_close(soft_structure(output), true, atol=1e-5, rtol=0)


def test_colour_features_carry_lightness_and_the_outside_flag() -> None:
    f_tensor = torch.zeros(1, 4, 1, 3)
    f_tensor[0, F_COLOR, 0] = torch.tensor([0.0, 1.0, 9.0])  # outside, white, black
    features = structure_channels(f_tensor)[0, 3:, 0].T  # (3 pixels, COLOR_FEATURES)
    lightness, contrast_level, outside = (
        COLOR_FEATURES.index(n) for n in ("lightness", "contrast_level", "outside")
    )
    torch.testing.assert_close(features[:, outside], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(features[:, lightness], torch.tensor([0.0, 1.0, 0.0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(features[:, contrast_level], torch.tensor([0.0, 1.0, 0.0]), atol=1e-4, rtol=0)
