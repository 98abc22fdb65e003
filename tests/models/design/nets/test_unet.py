"""DesignUNet: head shapes at the input's resolution, channel widths, and a clear error for bad sizes."""

from __future__ import annotations

import pytest
import torch

from models.design.nets.unet import DesignUNet
from models.design.schema import NUM_COLOR_IDS
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
