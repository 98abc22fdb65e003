"""A tiny conditional DDPM decoder and metadata-dependent toy designs for the decoder tests."""

from __future__ import annotations

import functools

import torch
from diffusers import DDPMScheduler

from models.design.decoder.module import DecoderModel
from models.design.nets.diffusion_unet import ConditionalUNet
from models.design.nets.meta_tokens import MetaTokens
from models.design.schema import FORMAT_NAMES, GOALS, GRAMMAR_NAMES

RESOLUTION = 16
CONTEXT_DIM = 16


def tiny_unet() -> ConditionalUNet:
    """Two levels (16x16 and 8x8), 8 channels, cross- and self-attention at 8x8: ~60k parameters."""
    return ConditionalUNet(
        channels=8,
        channel_mults=(1, 2),
        attention_levels=(1,),
        context_dim=CONTEXT_DIM,
        heads=2,
        norm_groups=4,
    )


def perturb(module: torch.nn.Module, seed: int, scale: float = 0.05) -> torch.nn.Module:
    """Add seeded noise to every parameter, so that zero-initialised output layers (eps = 0 at init) and
    the NULL tokens carry signal and a test exercises every path."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return module


def tiny_decoder(seed: int = 0, prediction_type: str = "epsilon", **options) -> DecoderModel:
    """A DecoderModel around the tiny U-Net with perturbed weights, built under `seed`."""
    torch.manual_seed(seed)
    module = DecoderModel(
        net=tiny_unet(),
        meta_tokens=MetaTokens(CONTEXT_DIM),
        noise_scheduler=DDPMScheduler(
            num_train_timesteps=1000, beta_schedule="linear", prediction_type=prediction_type
        ),
        optimizer=functools.partial(torch.optim.Adam, lr=1e-3),
        resolution=RESOLUTION,
        **({"sample_steps": 2, "grid_per_pair": 1} | options),
    )
    return perturb(module, seed)


def toy_designs(count: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Float designs in [-1, 1] whose layout follows the metadata: the format sets the width of a
    letterboxed panel, the goal its colour, the tone a bright bar's height."""
    generator = torch.Generator().manual_seed(seed)
    goal = torch.randint(0, len(GOALS), (count,), generator=generator)
    format = torch.randint(0, len(FORMAT_NAMES), (count,), generator=generator)
    tone = torch.rand(count, 2, generator=generator)
    images = -torch.ones(count, 3, RESOLUTION, RESOLUTION)
    colours = torch.linspace(-0.6, 0.6, len(GOALS))
    for i in range(count):
        half_width = 2 + 2 * int(format[i])
        left, right = RESOLUTION // 2 - half_width, RESOLUTION // 2 + half_width
        images[i, :, :, left:right] = colours[goal[i]]
        bar = 2 + int(tone[i, 0] * 8)
        images[i, 0, 2 : 2 + bar, left:right] = 1.0
    grammar = torch.rand(
        count, len(GRAMMAR_NAMES), generator=generator
    )  # labels phase 3 compares readings with
    return {
        "image": images,
        "goal": goal,
        "format": format,
        "tone": tone,
        "grammar": grammar,
        "index": torch.arange(count),
    }
