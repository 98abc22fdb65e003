"""DesignUNet: head shapes at the input's resolution, channel widths, and a clear error for bad sizes."""

from __future__ import annotations

import pytest
import torch

from models.design.nets.encoder_heads import ColorNamingPrior
from models.design.nets.unet import DesignUNet
from models.design.schema import COLOR_ID_RGB, NUM_COLOR_IDS, to_model_image
from training.toolkit.errors import UserError


def test_heads_match_the_input_resolution_at_64() -> None:
    output = DesignUNet(base_channels=4)(torch.zeros(2, 3, 64, 64))
    assert output.text.shape == (2, 1, 64, 64)
    assert output.image.shape == (2, 1, 64, 64)
    assert output.color.shape == (2, NUM_COLOR_IDS, 64, 64)
    assert output.hierarchy.shape == (2, 1, 64, 64)


def test_levels_double_their_channels_up_to_max_channels() -> None:
    net = DesignUNet(base_channels=8, depth=4, max_channels=32)
    widths = [block.conv.layers[0].out_channels for block in net.down]
    assert widths == [16, 32, 32, 32]
    assert net.head.in_channels == 8


def test_shallower_net_accepts_sides_divisible_by_its_depth() -> None:
    output = DesignUNet(base_channels=4, depth=2)(torch.zeros(1, 3, 20, 36))
    assert output.color.shape == (1, NUM_COLOR_IDS, 20, 36)


@pytest.mark.parametrize("shape", [(72, 72), (64, 40), (63, 64)])
def test_sides_not_divisible_by_two_to_the_depth_are_rejected(shape: tuple[int, int]) -> None:
    with pytest.raises(UserError, match=r"divisible by 16.*data\.resolution"):
        DesignUNet(base_channels=4, depth=4)(torch.zeros(1, 3, *shape))


def test_norm_groups_that_do_not_divide_a_width_fall_back_to_a_common_divisor() -> None:
    net = DesignUNet(base_channels=12, depth=1, norm_groups=8)  # widths 12, 24
    assert [block.layers[1].num_groups for block in (net.inc, net.down[0].conv)] == [4, 8]
    assert net(torch.zeros(1, 3, 8, 8)).text.shape == (1, 1, 8, 8)


def test_color_prior_names_every_vocabulary_colour_before_training() -> None:
    """With the prior, an untrained net's arg-max colour ID is exact wherever a pixel is an ID's colour."""
    ids = torch.arange(NUM_COLOR_IDS).reshape(1, 1, 20, 11)
    images = to_model_image(torch.from_numpy(COLOR_ID_RGB))[ids[0, 0]].permute(2, 0, 1)[None]
    images = torch.nn.functional.pad(images, (0, 5, 0, 4), value=1.0)  # to 24 x 16 (white, ID 1)
    torch.manual_seed(0)
    net = DesignUNet(base_channels=4, depth=2, color_prior_width=2.0)
    predicted = net(images).color.argmax(1)
    assert torch.equal(predicted[0, :20, :11], ids[0, 0])
    assert (predicted[0, 20:] == 1).all()


def test_color_prior_is_differentiable_in_the_image() -> None:
    """Phase 3 reads generated images through the encoder: the prior must pass gradients to them."""
    images = (to_model_image(torch.tensor(COLOR_ID_RGB[[5, 100]]))[:, :, None, None] + 0.02).repeat(
        1, 1, 4, 4
    )
    images.requires_grad_(True)
    ColorNamingPrior(width=2.0)(images).softmax(1)[:, 5].sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
