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
    ("t", "pinned"),  # the float64 closed form: the same to ~1e-16 on any CPU
    [(0, 1e-20), (487, 0.00979157199), (999, 0.01999998353)],
)
def test_posterior_variance_matches_the_closed_form(scheduler, t, pinned):
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    abar = closed_form_alphas_cumprod()
    abar_prev = abar[t - 1] if t > 0 else torch.tensor(1.0, dtype=torch.float64)
    closed_form = max((betas[t] * (1 - abar_prev) / (1 - abar[t])).item(), 1e-20)  # diffusers clamps t = 0
    assert closed_form == pytest.approx(pinned, rel=1e-9)
    # diffusers recovers beta_t = 1 - abar_t / abar_{t-1} in float32: a few ulps (~1.8e-7) of a ratio near 1
    # make a relative error of up to 1.8e-7 / beta_t = 1.8e-5 at t = 487, whose last bits depend on the CPU
    # (seen: 3e-6). 5e-5 allows that; a timestep off by one moves the variance by 1e-3 to 2e-3.
    variance = scheduler._get_variance(t).double()
    assert variance == pytest.approx(closed_form, rel=5e-5, abs=1e-12)


def test_alphas_cumprod_match_the_closed_form(scheduler):
    # a 1000-term float32 product: rounding grows like sqrt(1000) x 1.2e-7 ~ 4e-6 (seen: <= 4e-7 on scalar,
    # AVX2 and AVX-512 kernels); the pinned abar_T has 5 significant digits, hence rel=1e-3 there
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
    # abar_900 ~ 1.4e-3: dividing by its root amplifies float32 rounding ~27x. About four roundings of
    # values up to |x_t| ~ 4.5 (half an ulp: 2.4e-7 each) bound the error by ~2.6e-5 whatever the CPU draws
    # (seen: up to 1.4e-5 over 200 seeds); a wrong abar (t - 1's) is off by ~1e-2.
    assert torch.allclose(predict_x0(scheduler, xt, timesteps, eps), x0, atol=5e-5)


def test_ddim_sampler_shares_the_betas_and_starts_from_pure_noise(scheduler):
    ddim = sampling_scheduler("ddim", scheduler)
    assert isinstance(ddim, DDIMScheduler)
    assert torch.equal(ddim.alphas_cumprod, scheduler.alphas_cumprod)
    ddim.set_timesteps(10)
    assert ddim.timesteps.tolist() == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert isinstance(sampling_scheduler("ddpm", scheduler), DDPMScheduler)
    with pytest.raises(ValueError, match="sampler must be 'ddim' or 'ddpm'"):
        sampling_scheduler("euler", scheduler)
