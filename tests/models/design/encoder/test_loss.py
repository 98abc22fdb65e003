"""CompositeLoss: zero for a perfect reading, hand-computed values with the alpha weights."""

from __future__ import annotations

import math

import pytest
import torch

from models.design.encoder.loss import CompositeLoss, soft_dice_loss
from models.design.nets.encoder_heads import EncoderOutput
from models.design.schema import F_COLOR, F_HIERARCHY, F_TEXT, NUM_COLOR_IDS
from tests.models.design.encoder_batches import confident_heads, synthetic_design_batch
from training.toolkit.errors import UserError


def test_perfect_reading_costs_nothing() -> None:
    f_tensor = synthetic_design_batch(batch_size=2, size=16)["f_tensor"]
    parts = CompositeLoss()(confident_heads(f_tensor), f_tensor)
    assert parts.dice.item() == pytest.approx(0.0, abs=1e-6)
    assert parts.bce.item() == pytest.approx(0.0, abs=1e-6)
    assert parts.color_ce.item() == pytest.approx(0.0, abs=1e-6)
    assert parts.hierarchy_mse.item() == 0.0
    assert parts.total.item() == pytest.approx(0.0, abs=1e-5)


def one_row_case() -> tuple[EncoderOutput, torch.Tensor]:
    """One 1x4 design: text on the first two pixels, no image; every logit 0 (p = 0.5), hierarchy 0.5."""
    f_tensor = torch.zeros(1, 4, 1, 4)
    f_tensor[0, F_TEXT, 0, :2] = 1.0
    f_tensor[0, F_COLOR] = torch.tensor([3.0, 3.0, 1.0, 1.0])
    f_tensor[0, F_HIERARCHY] = torch.tensor([1.0, 0.8, 0.0, 0.0])
    zeros = torch.zeros(1, 1, 1, 4)
    heads = EncoderOutput(zeros, zeros, torch.zeros(1, NUM_COLOR_IDS, 1, 4), zeros + 0.5)
    return heads, f_tensor


# Dice, smooth 1: text 1 - (2*1 + 1) / (2 + 2 + 1) = 0.4; image 1 - (0 + 1) / (2 + 0 + 1) = 2/3.
DICE = (0.4 + 2 / 3) / 2
BCE = math.log(2)
COLOR_CE = math.log(NUM_COLOR_IDS)
HIERARCHY_MSE = (0.25 + 0.09 + 0.25 + 0.25) / 4


def test_hand_computed_terms_and_seed_weights() -> None:
    heads, f_tensor = one_row_case()
    parts = CompositeLoss(bce_weight=0.0)(heads, f_tensor)
    assert parts.dice.item() == pytest.approx(DICE)
    assert parts.bce.item() == pytest.approx(BCE)
    assert parts.color_ce.item() == pytest.approx(COLOR_CE)
    assert parts.hierarchy_mse.item() == pytest.approx(HIERARCHY_MSE)
    assert parts.total.item() == pytest.approx(1.0 * DICE + 0.5 * COLOR_CE + 1.0 * HIERARCHY_MSE)


def test_weights_scale_their_terms() -> None:
    heads, f_tensor = one_row_case()
    loss = CompositeLoss(dice_weight=2.0, color_weight=0.25, hierarchy_weight=3.0, bce_weight=0.5)
    expected = 2.0 * DICE + 0.5 * BCE + 0.25 * COLOR_CE + 3.0 * HIERARCHY_MSE
    assert loss(heads, f_tensor).total.item() == pytest.approx(expected)


def test_a_text_share_weighs_the_hierarchy_on_text_ink_apart_from_the_rest() -> None:
    heads, f_tensor = one_row_case()  # squared errors: text ink 0.25, 0.09; elsewhere 0.25, 0.25
    parts = CompositeLoss(hierarchy_text_share=0.5)(heads, f_tensor)
    assert parts.hierarchy_mse.item() == pytest.approx(0.5 * 0.17 + 0.5 * 0.25)
    parts = CompositeLoss(hierarchy_text_share=0.9)(heads, f_tensor)
    assert parts.hierarchy_mse.item() == pytest.approx(0.9 * 0.17 + 0.1 * 0.25)


def test_a_design_without_text_falls_back_to_the_plain_hierarchy_mse() -> None:
    heads, f_tensor = one_row_case()
    f_tensor[:, F_TEXT] = 0.0
    parts = CompositeLoss(hierarchy_text_share=0.5)(heads, f_tensor)
    assert parts.hierarchy_mse.item() == pytest.approx(HIERARCHY_MSE)


def test_a_text_share_outside_zero_one_is_refused() -> None:
    with pytest.raises(UserError, match="hierarchy_text_share"):
        CompositeLoss(hierarchy_text_share=1.0)


def test_dice_pools_the_batch_so_an_empty_mask_costs_only_its_false_positives() -> None:
    target = torch.zeros(2, 1, 2, 2)
    target[0, 0, 0, 0] = 1.0  # sample 1 has no mask at all
    logits = torch.full_like(target, -50.0)
    logits[0, 0, 0, 0] = 50.0
    assert soft_dice_loss(logits, target).item() == pytest.approx(0.0, abs=1e-6)
