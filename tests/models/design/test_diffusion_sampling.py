"""The reverse loop: golden values of a full guided DDIM run, classifier-free guidance, NULL tokens, and
gradients through the sampler (phase 3's innovation loop)."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from models.design.nets.meta_tokens import MetaTokens
from models.design.sampling import guided_eps, initial_noise, reverse_diffusion, sampling_scheduler
from tests.models.design.tiny_decoder import CONTEXT_DIM, RESOLUTION, perturb, tiny_decoder, tiny_unet

GOAL, FORMAT = torch.tensor([0, 4, 2]), torch.tensor([1, 3, 0])
TONE = torch.tensor([[0.1, 0.9], [0.5, 0.5], [1.0, 0.0]])


def golden_run() -> torch.Tensor:
    """A tiny decoder (fixed weights), noise from a fixed generator, 10 DDIM steps with guidance 3. The
    network runs in float64 (no thread-count summation effects), but its inputs do not: the weights'
    perturbation and the initial noise are float32 `randn` draws and diffusers keeps the betas in float32,
    and those last bits differ between CPUs (torch's vectorised AVX2/AVX-512 kernels vs its scalar ones)."""
    decoder = tiny_decoder(seed=0).eval().double()
    latents = initial_noise((3, 3, RESOLUTION, RESOLUTION), torch.Generator().manual_seed(0)).double()
    return decoder.sample(GOAL, FORMAT, TONE, num_inference_steps=10, guidance_scale=3.0, latents=latents)


def test_guided_ddim_loop_is_bit_reproducible_and_matches_the_golden_values():
    first, second = golden_run(), golden_run()
    assert torch.equal(first, second)  # same process: bit-identical
    assert first.shape == (3, 3, RESOLUTION, RESOLUTION)
    assert first.min() >= -1.0 and first.max() <= 1.0
    # Cross-machine goldens, pinned once from this code (torch 2.15 CPU): a change means the sampler or the
    # network changed. The float32 inputs carry ~6e-8 relative rounding that differs between CPUs, and 10
    # guided steps amplify it: +-1 ulp on the noise moves the abs-sum by up to 7e-4 (rel 6e-7); the scalar
    # and the AVX-512 kernels differ by 1e-3 (rel 9e-7) there, 2e-4 in the sum, 1e-4 in a corner pixel.
    # So rel 1e-4 of the abs-sum (also the sum's bound: it cancels to -28) and 1e-3 per pixel: ~100x and
    # ~10x that spread, yet a guidance of 3.001 instead of 3 moves them by 0.9, 0.5 and 1e-2, and
    # set_alpha_to_one=False by 1.6, 1.3 and 6e-3 (another seed, step count or spacing: by >= 1).
    assert first.sum().item() == pytest.approx(GOLDEN_SUM, abs=1e-4 * GOLDEN_ABS_SUM)
    assert first.abs().sum().item() == pytest.approx(GOLDEN_ABS_SUM, rel=1e-4)
    assert torch.allclose(first[:, 0, 0, :4], GOLDEN_CORNER, rtol=0, atol=1e-3)


GOLDEN_SUM = -28.10728946
GOLDEN_ABS_SUM = 1177.84087271
GOLDEN_CORNER = torch.tensor(  # red channel, first row, first four pixels of each sample
    [
        [-0.99378639, -1.0, 0.35845472, -0.00019756],
        [0.92449397, -0.99175638, -0.77115468, 0.56289194],
        [-0.95956402, 0.73114732, 0.72260896, -0.50038557],
    ],
    dtype=torch.float64,
)


@pytest.fixture
def denoiser() -> tuple[torch.nn.Module, MetaTokens]:
    torch.manual_seed(0)
    return perturb(tiny_unet(), seed=1).eval(), perturb(MetaTokens(CONTEXT_DIM), seed=2)


def test_guidance_scale_one_is_the_conditional_and_zero_the_unconditional_prediction(denoiser):
    net, tokens = denoiser
    x = torch.randn(3, 3, RESOLUTION, RESOLUTION, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([10, 500, 990])
    context, null = tokens(GOAL, FORMAT, TONE), tokens.null_tokens(3)
    # Same process, but guided_eps runs one batch of 6 where these run batches of 3: the float32 sums are
    # blocked differently (observed 6e-7 on eps of magnitude ~1, depending on the CPU's kernels). 1e-5, and
    # 5e-5 at s = 4 (which scales the difference by up to 2s + 1 = 9), stay far below a wrong formula's
    # error (the halves differ by 0.13).
    with torch.no_grad():
        conditional, unconditional = net(x, t, context), net(x, t, null)
        assert torch.allclose(guided_eps(net, x, t, context, null, 1.0), conditional, atol=1e-5)
        assert torch.allclose(guided_eps(net, x, t, context, null, 0.0), unconditional, atol=1e-5)
        assert (conditional - unconditional).abs().max() > 1e-3  # the metadata does change the prediction
        guided = guided_eps(net, x, t, context, null, 4.0)
        assert torch.allclose(guided, unconditional + 4.0 * (conditional - unconditional), atol=5e-5)


def test_with_every_sample_dropped_the_prediction_ignores_the_metadata(denoiser):
    net, tokens = denoiser
    x = torch.randn(3, 3, RESOLUTION, RESOLUTION, generator=torch.Generator().manual_seed(4))
    t = torch.tensor([100, 100, 100])
    everything_dropped = torch.ones(3, dtype=torch.bool)
    with torch.no_grad():
        a = net(x, t, tokens(GOAL, FORMAT, TONE, drop=everything_dropped))
        b = net(x, t, tokens(GOAL.flip(0), FORMAT.flip(0), 1 - TONE, drop=everything_dropped))
        kept = net(x, t, tokens(GOAL.flip(0), FORMAT.flip(0), 1 - TONE))
    assert torch.equal(a, b)  # same process, same shapes: bit-identical
    assert not torch.allclose(a, kept)


def test_null_tokens_replace_dropped_samples_and_fields():
    tokens = perturb(MetaTokens(dim=4), seed=0)
    full = tokens(GOAL, FORMAT, TONE)
    assert full.shape == (3, 3, 4)
    per_sample = tokens(GOAL, FORMAT, TONE, drop=torch.tensor([True, False, True]))
    assert torch.equal(per_sample[0], tokens.null) and torch.equal(per_sample[2], tokens.null)
    assert torch.equal(per_sample[1], full[1])
    per_field = tokens(GOAL, FORMAT, TONE, drop=torch.tensor([[False, True, False]] * 3))
    assert torch.equal(per_field[:, 1], tokens.null[1].expand(3, -1))
    assert torch.equal(per_field[:, [0, 2]], full[:, [0, 2]])
    assert torch.equal(tokens.null_tokens(2), tokens.null.expand(2, -1, -1))
    # NULL tokens learn only from dropped samples
    per_sample.sum().backward()
    assert tokens.null.grad.abs().sum() > 0
    tokens.zero_grad()
    full.sum().backward()
    assert tokens.null.grad is None or tokens.null.grad.abs().sum() == 0


def run_sampler(denoiser, latents: torch.Tensor, grad: bool, steps: int = 3, **options) -> torch.Tensor:
    net, tokens = denoiser
    scheduler = sampling_scheduler("ddim", DDPMScheduler(num_train_timesteps=1000))
    return reverse_diffusion(
        net,
        scheduler,
        latents,
        tokens(GOAL, FORMAT, TONE),
        tokens.null_tokens(3),
        guidance_scale=2.0,
        num_inference_steps=steps,
        grad=grad,
        **options,
    )


def test_the_sampler_is_differentiable_to_its_initial_latents_only_when_asked(denoiser):
    latents = initial_noise((3, 3, RESOLUTION, RESOLUTION), torch.Generator().manual_seed(5)).requires_grad_()
    assert not run_sampler(denoiser, latents, grad=False).requires_grad
    images = run_sampler(denoiser, latents, grad=True)
    (gradient,) = torch.autograd.grad(images.square().mean(), latents)
    assert gradient.abs().sum() > 0
    # recomputing each step in backward gives the same gradient
    (checkpointed,) = torch.autograd.grad(
        run_sampler(denoiser, latents, grad=True, grad_checkpoint=True).square().mean(), latents
    )
    assert torch.allclose(checkpointed, gradient, atol=1e-6)


def test_grad_last_keeps_the_graph_through_the_last_steps_only(denoiser):
    net, tokens = denoiser
    latents = initial_noise((3, 3, RESOLUTION, RESOLUTION), torch.Generator().manual_seed(6)).requires_grad_()
    images = run_sampler(denoiser, latents, grad=True, grad_last=1)
    assert torch.equal(images, run_sampler(denoiser, latents, grad=False))  # the same samples
    weights = list(net.parameters())
    latent_gradient, *gradient = torch.autograd.grad(
        images.square().mean(), [latents, *weights], allow_unused=True
    )
    assert latent_gradient is None  # the graph starts after the first two steps
    # by hand: two steps without a graph, the last with one
    scheduler = sampling_scheduler("ddim", DDPMScheduler(num_train_timesteps=1000))
    scheduler.set_timesteps(3)
    x = latents.detach()
    context, null = tokens(GOAL, FORMAT, TONE), tokens.null_tokens(3)
    with torch.no_grad():
        for t in scheduler.timesteps[:2]:
            x = scheduler.step(guided_eps(net, x, t, context, null, 2.0), t, x).prev_sample
    last = scheduler.timesteps[2]
    by_hand = scheduler.step(guided_eps(net, x, last, context, null, 2.0), last, x).prev_sample.clamp(-1, 1)
    expected = torch.autograd.grad(by_hand.square().mean(), weights, allow_unused=True)
    for got, want in zip(gradient, expected, strict=True):
        assert (got is None) == (want is None)
        if got is not None:
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert sum(g.abs().sum() for g in gradient if g is not None) > 0
    # with K >= the step count, the whole loop
    (whole,) = torch.autograd.grad(
        run_sampler(denoiser, latents, grad=True, grad_last=5).square().mean(), latents
    )
    (full,) = torch.autograd.grad(run_sampler(denoiser, latents, grad=True).square().mean(), latents)
    assert torch.equal(whole, full)


def test_initial_noise_from_a_cpu_generator_is_the_same_on_any_device():
    noise = initial_noise((2, 3, 4, 4), torch.Generator().manual_seed(7), device="cpu")
    assert torch.equal(noise, torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(7)))
