"""Baselines share MultiSessionNet's API: forward(batch) -> {session: rates}, bias init, regularisers."""

from __future__ import annotations

import torch

from models.v1.nets.baselines import LNNet, NullNet
from tests.models.v1.tiny_models import HEIGHT, LAGS, SESSIONS, WIDTH, make_batch


def test_null_model_predicts_the_mean_rates() -> None:
    model = NullNet(SESSIONS, output="exp")
    rates = torch.tensor([0.1, 0.5, 2.0])
    model.init_readout_bias("alpha", rates)
    out = model(make_batch({"alpha": 4, "beta": 2}))
    assert out["beta"].shape == (2, 5)
    torch.testing.assert_close(out["alpha"], rates.expand(4, 3))
    assert model.no_weight_decay() == {"units.alpha.bias", "units.beta.bias"}


def test_ln_model_is_a_separable_linear_filter_then_the_nonlinearity() -> None:
    model = LNNet(SESSIONS, num_lags=LAGS, frame_shape=(HEIGHT, WIDTH), rank=2)
    batch = make_batch({"alpha": 3, "beta": 2})
    out = model(batch)
    assert {name: tuple(r.shape) for name, r in out.items()} == {"alpha": (3, 3), "beta": (2, 5)}
    units = model.units["beta"]
    stim = batch["beta"]["stim"]
    filters = torch.einsum("rl,rhw->lhw", units.temporal[4], units.spatial[4])  # unit 4's (L, H, W) filter
    expected = torch.nn.functional.softplus((stim * filters).sum(dim=(1, 2, 3)) + units.bias[4])
    torch.testing.assert_close(out["beta"][:, 4], expected, rtol=1e-4, atol=1e-6)
    loss = sum(r.sum() for r in out.values()) + model.core_regularization()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert model.readout_regularization() == 0 and model.shifter_regularization() == 0
