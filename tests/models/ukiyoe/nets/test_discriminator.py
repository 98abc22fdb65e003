"""Residual discriminator and minibatch standard deviation."""

from __future__ import annotations

import math

import pytest
import torch

from models.ukiyoe.nets.discriminator import MinibatchStd, ResidualBlock, ResidualDiscriminator


def test_minibatch_std_equals_the_hand_computed_group_std() -> None:
    x = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    out = MinibatchStd(group_size=4)(x)
    assert out.shape == (4, 4, 2, 2)
    assert torch.equal(out[:, :3], x)
    expected = x.std(dim=0, unbiased=False).mean()
    assert torch.allclose(out[:, 3], expected.expand(4, 2, 2), atol=1e-6)


def test_minibatch_std_groups_are_consecutive_samples() -> None:
    x = torch.zeros(4, 1, 1, 1)
    x[2:, 0, 0, 0] = torch.tensor([0.0, 2.0])  # group {0, 1} identical, group {2, 3} std 1
    out = MinibatchStd(group_size=2)(x)[:, 1, 0, 0]
    assert torch.allclose(out, torch.tensor([0.0, 0.0, 1.0, 1.0]), atol=1e-3)


@pytest.mark.parametrize(("batch", "group"), [(6, 3), (1, 1), (5, 1), (8, 4)])
def test_minibatch_std_falls_back_to_a_group_size_dividing_the_batch(batch: int, group: int) -> None:
    mbstd = MinibatchStd(group_size=4)
    assert mbstd.group_for(batch) == group
    x = torch.randn(batch, 2, 3, 3)
    out = mbstd(x)[:, 2, 0, 0]
    expected = x.reshape(-1, group, 2, 3, 3).std(dim=1, unbiased=False).mean(dim=(1, 2, 3))
    assert torch.allclose(out, expected.repeat_interleave(group), atol=1e-3)


def test_residual_block_halves_the_resolution_and_keeps_unit_scale_sum() -> None:
    block = ResidualBlock(4, 8)
    with torch.no_grad():
        for conv in (block.conv1, block.conv2):
            conv.weight.zero_()
            conv.bias.zero_()
    x = torch.randn(2, 4, 8, 8)
    out = block(x)
    assert out.shape == (2, 8, 4, 4)
    # With the residual branch silent the output is the downsampled skip over sqrt(2).
    skip = block.skip(torch.nn.functional.avg_pool2d(x, 2))
    assert torch.allclose(out, skip / math.sqrt(2), atol=1e-6)


@pytest.mark.parametrize("batch", [1, 6])
def test_discriminator_gives_one_finite_logit_per_image_and_gradients(batch: int) -> None:
    torch.manual_seed(0)
    disc = ResidualDiscriminator(resolution=32, channels=(8, 16))
    x = torch.rand(batch, 3, 32, 32, requires_grad=True) * 2 - 1
    logits = disc(x)
    assert logits.shape == (batch,)
    assert torch.isfinite(logits).all()
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)  # as the R1 penalty needs
    assert grad.abs().sum() > 0
    (logits.sum() + grad.square().sum()).backward()
    assert all(p.grad is not None for p in disc.parameters())


def test_discriminator_sees_the_batch_through_minibatch_std() -> None:
    torch.manual_seed(0)
    disc = ResidualDiscriminator(resolution=16, channels=(8,)).eval()
    varied = torch.rand(4, 3, 16, 16) * 2 - 1
    collapsed = varied[:1].expand(4, -1, -1, -1)
    # The first image's logit changes when its group-mates are copies of it.
    assert not torch.allclose(disc(varied)[0], disc(collapsed)[0])


def test_discriminator_rejects_bad_resolutions() -> None:
    with pytest.raises(ValueError, match="power of two"):
        ResidualDiscriminator(resolution=48)
    with pytest.raises(ValueError, match="built for 32px"):
        ResidualDiscriminator(resolution=32)(torch.zeros(1, 3, 64, 64))
