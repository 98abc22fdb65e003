"""IntegratedNCA: perception, the do-nothing initialisation, alive masking, stochastic updates, FiLM."""

import pytest
import torch
from torch import nn

from models.ukiyoe.grow_pool import seed_state
from models.ukiyoe.nets.nca import ALPHA, IntegratedNCA, perceive


def _seed_batch(batch: int = 2, channels: int = 8, size: int = 9) -> torch.Tensor:
    return seed_state(channels, size).expand(batch, -1, -1, -1).clone()


def _active(nca: IntegratedNCA, std: float = 0.5) -> IntegratedNCA:
    """Give the zero-initialised last layer (and its bias) non-zero weights."""
    torch.manual_seed(1)
    nn.init.normal_(nca.update.weight, std=std)
    nn.init.normal_(nca.update.bias, std=std)
    return nca


def test_perceive_is_identity_then_sobel_gradients_per_channel():
    rows, cols = torch.meshgrid(torch.arange(7.0), torch.arange(7.0), indexing="ij")
    state = torch.stack([2.0 * cols, -3.0 * rows])[None]  # channel 0: d/dx = 2, channel 1: d/dy = -3
    out = perceive(state)
    assert out.shape == (1, 6, 7, 7)
    inner = (slice(None), slice(1, -1), slice(1, -1))  # zero padding bends the border
    torch.testing.assert_close(out[0, 0], state[0, 0])
    torch.testing.assert_close(out[0, 1][inner[1:]], torch.full((5, 5), 2.0))
    torch.testing.assert_close(out[0, 2][inner[1:]], torch.zeros(5, 5))
    torch.testing.assert_close(out[0, 3], state[0, 1])
    torch.testing.assert_close(out[0, 4][inner[1:]], torch.zeros(5, 5))
    torch.testing.assert_close(out[0, 5][inner[1:]], torch.full((5, 5), -3.0))


def test_untrained_nca_leaves_a_seed_unchanged_exactly():
    nca = IntegratedNCA(state_channels=8, hidden=16, w_dim=0, num_colors=4)
    state = _seed_batch()
    assert torch.equal(nca(state, steps=20), state)


def test_steps_zero_returns_the_input_and_steps_defaults_to_the_attribute():
    nca = _active(IntegratedNCA(state_channels=8, hidden=16, w_dim=0, fire_rate=1.0, steps=3))
    state = _seed_batch()
    assert torch.equal(nca(state, steps=0), state)
    by_attribute = nca(state)
    explicit = state
    for _ in range(3):
        explicit = nca.step(explicit)
    torch.testing.assert_close(by_attribute, explicit)


def test_update_reaches_only_living_cells_and_their_neighbours():
    nca = _active(IntegratedNCA(state_channels=8, hidden=16, w_dim=0, fire_rate=1.0))
    state = _seed_batch(size=9)
    out = nca(state, steps=1)
    changed = (out != state).any(dim=1)[0]
    assert changed.any()
    # the seed sits at (4, 4): only its 3x3 neighbourhood may live after one step
    outside = torch.ones(9, 9, dtype=torch.bool)
    outside[3:6, 3:6] = False
    assert not changed[outside].any()
    assert (out[0][:, outside] == 0).all()  # dead cells stay exactly zero despite the non-zero bias


def test_dead_state_stays_zero_and_cells_without_living_neighbours_die():
    nca = _active(IntegratedNCA(state_channels=8, hidden=16, w_dim=0, fire_rate=1.0))
    dead = torch.zeros(2, 8, 9, 9)
    assert torch.equal(nca(dead, steps=5), dead)
    faint = torch.zeros(1, 8, 9, 9)
    faint[0, 1:, 4, 4] = 1.0  # colour and hidden values but alpha 0: not alive
    assert torch.equal(nca.step(faint), torch.zeros_like(faint))


def test_alive_mask_is_a_dilated_alpha_threshold():
    nca = IntegratedNCA(state_channels=4, hidden=8, w_dim=0, alive_threshold=0.1)
    state = torch.zeros(1, 4, 5, 5)
    state[0, ALPHA, 0, 0] = 0.2
    state[0, ALPHA, 4, 4] = 0.1  # not above the threshold
    expected = torch.zeros(5, 5, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(nca.alive_mask(state)[0, 0], expected)


def test_fire_rate_one_updates_every_living_cell_and_half_about_half():
    state = torch.zeros(1, 8, 32, 32)
    state[:, ALPHA] = 1.0
    full = _active(IntegratedNCA(state_channels=8, hidden=16, w_dim=0, fire_rate=1.0))
    updated = (full.step(state) != state).any(dim=1)
    assert updated.all()
    half = _active(IntegratedNCA(state_channels=8, hidden=16, w_dim=0, fire_rate=0.5))
    share = (half.step(state) != state).any(dim=1).float().mean()
    assert 0.4 < share < 0.6
    # the same generator state gives the same stochastic step
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(half.step(state, generator=g1), half.step(state, generator=g2))


def test_film_conditioning_changes_the_update_with_w():
    nca = _active(IntegratedNCA(state_channels=8, hidden=16, w_dim=4, fire_rate=1.0), std=0.01)
    state = torch.zeros(1, 8, 6, 6)
    state[:, ALPHA] = 1.0  # alive everywhere, and stays so under a small update
    a, b = nca.step(state, w=torch.zeros(1, 4)), nca.step(state, w=torch.ones(1, 4))
    assert (a[:, ALPHA] > 0.9).all() and (b[:, ALPHA] > 0.9).all()
    assert (a - b).abs().amax() > 1e-3
    with pytest.raises(ValueError, match="w_dim"):
        nca(state, steps=1)


def test_logits_and_rgba_readouts():
    nca = IntegratedNCA(state_channels=8, hidden=16, w_dim=0, num_colors=5)
    state = torch.randn(2, 8, 6, 6)
    assert nca.logits(state).shape == (2, 5, 6, 6)
    rgba = nca.rgba(state)
    torch.testing.assert_close(rgba[:, 3], state[:, ALPHA])
    torch.testing.assert_close(rgba[:, :3], state[:, 1:4])
    with pytest.raises(ValueError, match="num_colors=0"):
        IntegratedNCA(state_channels=8, hidden=16, w_dim=0, num_colors=0).logits(state)
