"""The decoder's reverse diffusion: diffusers schedulers, classifier-free guidance, optionally differentiable.

Training uses a `DDPMScheduler` (T steps, linear betas); sampling builds a `DDIMScheduler` (few steps,
eta = 0: deterministic given the initial noise) or a `DDPMScheduler` from the same config. Phase 3 needs
gradients through the whole loop (`grad=True`, optionally recomputing each step's activations in the
backward pass) and the clean-image estimate from a noisy one (`predict_x0`). The network predicts the noise
(epsilon) or the velocity v = sqrt(abar) eps - sqrt(1 - abar) x0 (v_prediction); guidance mixes either
linearly and the diffusers schedulers read which from the shared config.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Literal

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch.utils.checkpoint import checkpoint

SamplerKind = Literal["ddim", "ddpm"]
SAMPLERS: tuple[str, ...] = ("ddim", "ddpm")
# eps or v (x_t (B, C, H, W), t (B,), context tokens (B, M, D)): the U-Net
Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def sampling_scheduler(kind: SamplerKind, training: DDPMScheduler) -> DDIMScheduler | DDPMScheduler:
    """A fresh sampling scheduler with the training scheduler's betas. DDIM uses "trailing" timestep
    spacing, so its first step starts from t = T - 1 (pure noise) however few steps it takes."""
    if kind == "ddim":
        return DDIMScheduler.from_config(training.config, timestep_spacing="trailing", set_alpha_to_one=True)
    if kind == "ddpm":
        return DDPMScheduler.from_config(training.config)
    raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {kind!r}.")


def initial_noise(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Standard-normal x_T drawn on the generator's device and moved to `device`, so a CPU generator gives
    the same starting noise on every device."""
    source = generator.device if generator is not None else torch.device(device)
    return torch.randn(shape, generator=generator, device=source).to(device)


def guided_eps(
    net: Denoiser,
    x: torch.Tensor,
    timesteps: torch.Tensor,
    context: torch.Tensor,
    null_context: torch.Tensor,
    guidance_scale: float,
) -> torch.Tensor:
    """Classifier-free guidance from one batched forward of the conditional and unconditional halves:
    eps = eps_uncond + s * (eps_cond - eps_uncond) (s = 1: conditional, s = 0: unconditional)."""
    batch = x.shape[0]
    timesteps = timesteps.expand(batch) if timesteps.dim() == 0 else timesteps
    eps = net(torch.cat([x, x]), torch.cat([timesteps, timesteps]), torch.cat([context, null_context]))
    eps_cond, eps_uncond = eps[:batch], eps[batch:]
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


def reverse_diffusion(
    net: Denoiser,
    scheduler: DDIMScheduler | DDPMScheduler,
    latents: torch.Tensor,
    context: torch.Tensor,
    null_context: torch.Tensor,
    guidance_scale: float = 3.0,
    num_inference_steps: int = 25,
    generator: torch.Generator | None = None,
    grad: bool = False,
    grad_checkpoint: bool = False,
    grad_last: int | None = None,
) -> torch.Tensor:
    """Denoise `latents` (x_T) into images in [-1, 1] in `num_inference_steps` guided steps.

    A DDIM scheduler (eta = 0) is deterministic; a DDPM one draws its step noise from `generator`.
    `grad=False` runs under `torch.no_grad()`; `grad=True` keeps the graph, so a loss on the images
    backpropagates to `latents`, the context and the network (`grad_checkpoint` recomputes each step's
    activations during backward instead of keeping them: same gradients, far less memory). `grad_last` = K
    keeps it through the last K steps only (DRaFT-K, Clark et al. 2024: the earlier steps run without a
    graph, so the gradient reaches the network and not `latents`); None: every step.
    """
    scheduler.set_timesteps(num_inference_steps, device=latents.device)
    steps = len(scheduler.timesteps)
    first_with_grad = steps - min(grad_last, steps) if grad and grad_last is not None else 0
    x = latents
    for index, t in enumerate(scheduler.timesteps):
        with contextlib.nullcontext() if grad and index >= first_with_grad else torch.no_grad():
            args = (net, x, t, context, null_context, guidance_scale)
            eps = checkpoint(guided_eps, *args, use_reentrant=False) if grad_checkpoint else guided_eps(*args)
            x = scheduler.step(eps, t, x, generator=generator).prev_sample
    return x.clamp(-1.0, 1.0)


PREDICTIONS: tuple[str, ...] = ("epsilon", "v_prediction")


def predict_x0(
    scheduler: DDPMScheduler | DDIMScheduler, xt: torch.Tensor, timesteps: torch.Tensor, output: torch.Tensor
) -> torch.Tensor:
    """The clean image implied by the network's `output` at x_t, by the scheduler's `prediction_type`:
    epsilon x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar); v x0 = sqrt(abar) x_t - sqrt(1 - abar) v, with abar
    from the scheduler's `alphas_cumprod` (differentiable in `xt` and `output`; not clamped)."""
    alphas_cumprod = scheduler.alphas_cumprod.to(device=xt.device, dtype=xt.dtype)
    abar = alphas_cumprod[timesteps.to(xt.device).long()].reshape(-1, *([1] * (xt.dim() - 1)))
    if scheduler.config.prediction_type == "v_prediction":
        return abar.sqrt() * xt - (1.0 - abar).sqrt() * output
    return (xt - (1.0 - abar).sqrt() * output) / abar.sqrt()
