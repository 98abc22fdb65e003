"""The decoder's forward process: diffusers' DDPMScheduler against closed forms computed here in float64,
and `predict_x0` as the exact inverse of `add_noise`."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from models.design.sampling import predict_x0, sampling_scheduler

T = 1000


def closed_form_alphas_cumprod() -> torch.Tensor:
    """abar_t = prod_{s <= t} (1 - beta_s), betas linear from 1e-4 to 0.02, in float64."""
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


@pytest.fixture
def scheduler() -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")


@pytest.mark.parametrize(
    ("t", "pinned"),
    [(0, 1e-20), (487, 0.0097915), (999, 0.0199999)],
)
def test_posterior_variance_matches_the_closed_form(scheduler, t, pinned):
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    abar = closed_form_alphas_cumprod()
    abar_prev = abar[t - 1] if t > 0 else torch.tensor(1.0, dtype=torch.float64)
    closed_form = betas[t] * (1 - abar_prev) / (1 - abar[t])  # 0 at t = 0; diffusers clamps to 1e-20
    variance = scheduler._get_variance(t).double()
    assert variance == pytest.approx(max(closed_form.item(), 1e-20), rel=1e-5, abs=1e-12)
    assert variance == pytest.approx(pinned, rel=1e-5)


def test_alphas_cumprod_match_the_closed_form(scheduler):
    assert torch.allclose(scheduler.alphas_cumprod.double(), closed_form_alphas_cumprod(), rtol=1e-5, atol=0)
    assert scheduler.alphas_cumprod[-1].item() == pytest.approx(4.0358e-5, rel=1e-3)  # x_T is ~pure noise


def test_add_noise_is_sqrt_abar_x0_plus_sqrt_one_minus_abar_eps(scheduler):
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 8, 8, generator=generator) * 2 - 1
    eps = torch.randn(4, 3, 8, 8, generator=generator)
    timesteps = torch.tensor([0, 250, 487, 999])
    abar = closed_form_alphas_cumprod()[timesteps].reshape(-1, 1, 1, 1)
    expected = abar.sqrt() * x0.double() + (1 - abar).sqrt() * eps.double()
    # diffusers keeps abar in float32 (a 1000-term cumprod): agreement to ~1e-6
    assert torch.allclose(scheduler.add_noise(x0, eps, timesteps).double(), expected, atol=1e-5)


def test_predict_x0_inverts_add_noise(scheduler):
    generator = torch.Generator().manual_seed(1)
    x0 = torch.rand(3, 3, 8, 8, generator=generator) * 2 - 1
    eps = torch.randn(3, 3, 8, 8, generator=generator)
    timesteps = torch.tensor([5, 500, 900])
    xt = scheduler.add_noise(x0, eps, timesteps)
    # abar_900 ~ 1.4e-3: dividing by its root amplifies float32 rounding ~27x
    assert torch.allclose(predict_x0(scheduler, xt, timesteps, eps), x0, atol=2e-5)


def test_ddim_sampler_shares_the_betas_and_starts_from_pure_noise(scheduler):
    ddim = sampling_scheduler("ddim", scheduler)
    assert isinstance(ddim, DDIMScheduler)
    assert torch.equal(ddim.alphas_cumprod, scheduler.alphas_cumprod)
    ddim.set_timesteps(10)
    assert ddim.timesteps.tolist() == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert isinstance(sampling_scheduler("ddpm", scheduler), DDPMScheduler)
    with pytest.raises(ValueError, match="sampler must be 'ddim' or 'ddpm'"):
        sampling_scheduler("euler", scheduler)
