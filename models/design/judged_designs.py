"""The fixed designs phase 3 judges: seeded metadata and starting noise, and the grammar of a decoder's samples.

Fine-tuning compares its decoder's samples with the starting decoder's, and the innovation loop its
optimised latents with the initial ones; both comparisons hold only for the same metadata and the same
initial noise, so both draw them here from one seed: goals cycle fastest, then formats (every goal x
format pair in turn, as `task=sample` does), tones uniform in [0, 1]², then the noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from models.design.decoder.module import DecoderModel
from models.design.decoder.samples import SampleRequest, parse_sample_options
from models.design.grammar_reward import GrammarReward, judge_all
from models.design.sampling import initial_noise
from training.toolkit.errors import UserError


@dataclass(frozen=True)
class FixedDesigns:
    """`count` metadata (a SampleRequest: goal, format, tone) and their initial noise (count, C, R, R)."""

    request: SampleRequest
    latents: torch.Tensor

    def __len__(self) -> int:
        return len(self.latents)


def fixed_designs(count: int, channels: int, resolution: int, seed: int, key: str) -> FixedDesigns:
    """The same `count` designs for the same seed (`key` names the config giving `count`, for errors)."""
    if count < 1:
        raise UserError(f"{key}={count}: phase 3 judges at least one design; set it to a positive number.")
    generator = torch.Generator().manual_seed(seed)
    request = parse_sample_options(count, {}, generator)
    return FixedDesigns(request, initial_noise((count, channels, resolution, resolution), generator))


@torch.no_grad()
def judged_samples(
    decoder: DecoderModel,
    judges: Mapping[str, GrammarReward],
    designs: FixedDesigns,
    latents: torch.Tensor | None = None,
    steps: int | None = None,
    guidance_scale: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The decoder's deterministic samples (DDIM) of `designs` from `latents` (default: their own noise)
    and each judge's grammar of them, (N, 3, R, R) in [-1, 1] and {judge: (N, 4)}."""
    start = designs.latents if latents is None else latents
    request = designs.request
    images = decoder.sample(
        request.goal,
        request.format,
        request.tone,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        latents=start.to(decoder.device),
        sampler="ddim",
    )
    return images, judge_all(judges, images)
