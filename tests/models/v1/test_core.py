"""V1Core: shapes for the 2-D and ConvGRU variants, causality over lags, config errors, smoothness."""

from __future__ import annotations

import pytest
import torch

from tests.models.v1.tiny_models import HEIGHT, LAGS, WIDTH, tiny_core
from training.toolkit.errors import UserError


def test_output_is_one_feature_map_per_sample() -> None:
    core = tiny_core()
    assert core(torch.randn(3, 1, LAGS, HEIGHT, WIDTH)).shape == (3, core.out_channels, HEIGHT, WIDTH)


def test_time_kept_for_a_convgru() -> None:
    core = tiny_core(temporal_kernel=2, temporal_kernels=[2, 1], gru_channels=6)
    assert core.out_channels == 6
    assert core(torch.randn(2, 1, LAGS, HEIGHT, WIDTH)).shape == (2, 6, HEIGHT, WIDTH)


def test_every_lag_reaches_the_output() -> None:
    core = tiny_core(temporal_kernel=2, temporal_kernels=[2, 2])  # spans 1 + 1 + 1 + 1 = 4 lags
    stim = torch.randn(1, 1, LAGS, HEIGHT, WIDTH, requires_grad=True)
    core(stim).sum().backward()
    assert (stim.grad.abs().sum(dim=(0, 1, 3, 4)) > 0).all()


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"temporal_kernel": 3, "temporal_kernels": [2, 2]}, "temporal_kernel"),
        ({"spatial_kernels": [4, 3]}, "spatial_kernels"),
        ({"channels": [4]}, "channels"),
        ({"norm": "batch"}, "norm"),
        ({"norm_groups": 3}, "norm_groups"),
        ({"nonlinearity": "tanh"}, "nonlinearity"),
        ({"nonlinearity": ["elu"]}, "nonlinearity"),  # one per block: the tiny core has two
        ({"output_steps": 0}, "output_steps"),
        ({"temporal_kernel": 4, "output_steps": 2}, "output_steps"),  # 4 lags leave one step
        ({"output_steps": 2, "gru_channels": 3}, "output_steps"),
    ],
)
def test_bad_configs_name_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(UserError, match=f"model.core.{key}"):
        tiny_core(**overrides)


def test_output_steps_stack_the_last_time_steps_as_channels() -> None:
    """Step s of channel c is feature c * steps + s; the earlier step is the same features one frame
    before: it never sees the newest frame, and the newest step sees it."""
    core = tiny_core(output_steps=2)
    assert core.frontend.kernel_size[0] == LAGS - 1  # the default front end leaves exactly two steps
    assert core.out_channels == 2 * 4
    stim = torch.randn(2, 1, LAGS, HEIGHT, WIDTH, requires_grad=True)
    features = core(stim)
    assert features.shape == (2, 8, HEIGHT, WIDTH)
    earlier, latest = features[:, 0::2], features[:, 1::2]
    (newest_frame_grad,) = torch.autograd.grad(earlier.sum(), stim, retain_graph=True)
    assert newest_frame_grad[:, :, -1].abs().max() == 0
    assert newest_frame_grad[:, :, 0].abs().max() > 0
    (grad,) = torch.autograd.grad(latest.sum(), stim)
    assert grad[:, :, -1].abs().max() > 0 and grad[:, :, 0].abs().max() == 0


def test_one_nonlinearity_per_block_and_half_squaring() -> None:
    core = tiny_core(nonlinearity=["halfsquare", "elu"])
    assert [type(block.nonlinearity).__name__ for block in core.blocks] == ["HalfSquare", "ELU"]
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0])
    torch.testing.assert_close(core.blocks[0].nonlinearity(x), torch.tensor([0.0, 0.0, 0.0, 0.25, 9.0]))


def test_smoothness_penalty_is_the_squared_laplacian() -> None:
    core = tiny_core(spatial_kernels=[3, 3])
    with torch.no_grad():
        for block in core.blocks:
            block.spatial.weight.zero_()
        core.blocks[0].spatial.weight[0, 0, 1, 1] = 1.0  # Laplacian of a delta: -4 and four 1s
    torch.testing.assert_close(core.smoothness_penalty(), torch.tensor(20.0))


@pytest.mark.parametrize("kernel", [8, 3, 1])
def test_the_lag_filter_is_the_conv3d_it_replaces(kernel):
    """Same weight (state-dict key and shape), same outputs and gradients as Conv3d(k, 1, 1) in float64."""
    from torch import nn

    from models.v1.nets.core import LagFilter

    torch.manual_seed(0)
    conv = nn.Conv3d(2, 4, (kernel, 1, 1), bias=False).double()
    lag = LagFilter(2, 4, kernel).double()
    lag.load_state_dict(conv.state_dict())
    x = torch.randn(3, 2, 8, 5, 6, dtype=torch.float64)
    ours, reference = lag(x.clone().requires_grad_()), conv(x.clone().requires_grad_())
    assert ours.shape == reference.shape == (3, 4, 9 - kernel, 5, 6)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-12)
    ours.square().sum().backward()
    reference.square().sum().backward()
    torch.testing.assert_close(lag.weight.grad, conv.weight.grad, rtol=1e-12, atol=1e-12)


def test_a_valid_core_computes_the_centre_of_the_same_core_map() -> None:
    """Without norm statistics the two maps agree wherever the zero padding does not reach (kernels 5, 3:
    a 3 px margin per side)."""
    same = tiny_core(norm="none")
    valid = tiny_core(norm="none", padding="valid")
    valid.load_state_dict(same.state_dict())  # the same parameters: only the padding differs
    assert (same.margin, valid.margin) == (0, 3)
    stim = torch.randn(2, 1, LAGS, HEIGHT, WIDTH)
    centre = same(stim)[..., 3:-3, 3:-3]
    torch.testing.assert_close(valid(stim), centre)


def test_unknown_padding_names_the_key() -> None:
    with pytest.raises(UserError, match="model.core.padding"):
        tiny_core(padding="reflect")
