"""TransformerCritic: a tiny ViT scoring images."""

from __future__ import annotations

import pytest
import torch

from models.ukiyoe.nets.critic import TransformerCritic


def swap_two_patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """The image with its top-left and bottom-right patches exchanged (same pixels, other places)."""
    out = x.clone()
    out[..., :patch, :patch], out[..., -patch:, -patch:] = x[..., -patch:, -patch:], x[..., :patch, :patch]
    return out


def test_critic_gives_one_logit_per_image() -> None:
    torch.manual_seed(0)
    critic = TransformerCritic(resolution=16, patch_size=4, dim=32, depth=2, heads=4)
    logits = critic(torch.rand(5, 3, 16, 16) * 2 - 1)
    assert logits.shape == (5,)
    assert torch.isfinite(logits).all()
    assert logits.std() > 0


def test_critic_knows_where_patches_are_through_the_position_embedding() -> None:
    torch.manual_seed(0)
    critic = TransformerCritic(resolution=16, patch_size=4, dim=32).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    swapped = swap_two_patches(x, 4)
    with torch.no_grad():
        assert not torch.allclose(critic(x), critic(swapped), atol=1e-4)
        critic.pos_embed.zero_()  # without positions the tokens are a set: the score cannot change
        assert torch.allclose(critic(x), critic(swapped), atol=1e-5)


def test_gradients_flow_to_the_input_and_every_parameter() -> None:
    torch.manual_seed(0)
    critic = TransformerCritic(resolution=16, patch_size=4, dim=32)
    x = torch.rand(3, 3, 16, 16, requires_grad=True)
    critic(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in critic.parameters())


def test_critic_rejects_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match="multiple of patch_size"):
        TransformerCritic(resolution=30, patch_size=4)
    with pytest.raises(ValueError, match="built for 32px"):
        TransformerCritic()(torch.zeros(1, 3, 16, 16))
