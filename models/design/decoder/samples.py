"""What the decoder's samples are asked for and where they go: `task=sample` options -> per-sample
metadata, the validation grid's goal x format rows, and the grid / array files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from models.design.sampling import SAMPLERS
from models.design.schema import FORMAT_NAMES, GOALS, TONE_AXES
from training.toolkit.errors import UserError
from training.toolkit.figures import new_figure
from training.toolkit.sample_files import save_grid_png, to_uint8_image

SAMPLE_OPTIONS = ("goal", "format", "tone", "guidance_scale", "steps", "sampler", "batch_size")


@dataclass(frozen=True)
class SampleRequest:
    """Per-sample metadata (goal, format (N,) int64, tone (N, 2)) and how to sample them."""

    goal: torch.Tensor
    format: torch.Tensor
    tone: torch.Tensor
    guidance_scale: float | None
    steps: int | None
    sampler: str
    batch_size: int


def _index(value: Any, names: tuple[str, ...], key: str) -> int:
    """A goal/format given by name or index -> its index (UserError naming `sample.options.KEY`)."""
    if isinstance(value, str) and value in names:
        return names.index(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return value
    raise UserError(
        f"sample.options.{key}={value!r} is not a {key}; use one of {', '.join(names)} "
        f"(or an index 0..{len(names) - 1}), or leave it out to cycle through all of them."
    )


def parse_sample_options(num: int, options: Mapping[str, Any], generator: torch.Generator) -> SampleRequest:
    """`task=sample` options -> a SampleRequest for `num` samples. A missing goal/format cycles through
    all of them (both missing: every goal x format pair in turn); a missing tone is drawn uniformly in
    [0, 1]^2 from `generator`, like the training data's."""
    unknown = sorted(set(options) - set(SAMPLE_OPTIONS))
    if unknown:
        raise UserError(
            f"sample.options has unknown keys {unknown}; the decoder reads {', '.join(SAMPLE_OPTIONS)}."
        )
    if num < 1:
        raise UserError(f"sample.num={num}: ask for at least one sample.")
    order = torch.arange(num)
    goal_given, format_given = options.get("goal") is not None, options.get("format") is not None
    goal = torch.full((num,), _index(options["goal"], GOALS, "goal")) if goal_given else order % len(GOALS)
    if format_given:
        format = torch.full((num,), _index(options["format"], FORMAT_NAMES, "format"))
    else:
        format = (order // len(GOALS) if not goal_given else order) % len(FORMAT_NAMES)
    tone_option = options.get("tone")
    if tone_option is None:
        tone = torch.rand(num, len(TONE_AXES), generator=generator)
    else:
        values = list(tone_option) if isinstance(tone_option, list | tuple) else [tone_option]
        if len(values) != len(TONE_AXES) or not all(
            isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in values
        ):
            raise UserError(
                f"sample.options.tone={tone_option!r}: give {len(TONE_AXES)} numbers in [0, 1] "
                f"({' and '.join(TONE_AXES)}), e.g. sample.options.tone=[0.2,0.8]."
            )
        tone = torch.tensor(values, dtype=torch.float32).expand(num, -1).clone()
    sampler = str(options.get("sampler", "ddim"))
    if sampler not in SAMPLERS:
        raise UserError(f"sample.options.sampler={sampler!r}: use ddim (few steps) or ddpm (all T steps).")
    steps = options.get("steps")
    batch_size = int(options.get("batch_size", 64))
    if (steps is not None and int(steps) < 1) or batch_size < 1:
        raise UserError("sample.options.steps and sample.options.batch_size must be positive integers.")
    scale = options.get("guidance_scale")
    return SampleRequest(
        goal=goal.long(),
        format=format.long(),
        tone=tone,
        guidance_scale=float(scale) if scale is not None else None,
        steps=int(steps) if steps is not None else None,
        sampler=sampler,
        batch_size=batch_size,
    )


def write_sample_files(
    out_dir: Path, images: torch.Tensor, request: SampleRequest, **settings: Any
) -> dict[str, Any]:
    """Write `grid.png` (the first GRID_LIMIT samples) and `samples.npz` (uint8 images (N, 3, H, W), their
    goal/format/tone and the sampling `settings`); returns what summary.json records."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pixels = to_uint8_image(images.cpu())
    grid_path = save_grid_png(out_dir / "grid.png", pixels)
    arrays_path = out_dir / "samples.npz"
    np.savez(
        arrays_path,
        images=pixels.numpy(),
        goal=request.goal.numpy(),
        format=request.format.numpy(),
        tone=request.tone.numpy(),
        goal_names=np.array(GOALS),
        format_names=np.array(FORMAT_NAMES),
        **{name: np.array(value) for name, value in settings.items()},
    )
    return {
        "grid": str(grid_path),
        "arrays": str(arrays_path),
        "num": len(pixels),
        "resolution": list(pixels.shape[-2:]),
        "goals": {GOALS[i]: int((request.goal == i).sum()) for i in range(len(GOALS))},
        "formats": {FORMAT_NAMES[i]: int((request.format == i).sum()) for i in range(len(FORMAT_NAMES))},
        **settings,
    }


def grid_metadata(per_pair: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The validation grid's metadata in row-major order: one row per goal, in it `per_pair` samples for each
    format in turn; the k-th sample of every pair gets the same tone (drawn from `seed`, fixed per epoch)."""
    goals, formats = len(GOALS), len(FORMAT_NAMES)
    cell = torch.arange(goals * formats * per_pair)
    tone = torch.rand(per_pair, len(TONE_AXES), generator=torch.Generator().manual_seed(seed))
    return cell // (formats * per_pair), (cell // per_pair) % formats, tone[cell % per_pair]


def plot_sample_grid(images: torch.Tensor, per_pair: int) -> Figure:
    """Samples (N, 3, H, W) in [-1, 1] laid out as `grid_metadata` orders them: a row per goal, a column
    group of `per_pair` samples per format, both labelled."""
    columns = len(FORMAT_NAMES) * per_pair
    grid = make_grid(to_uint8_image(images.cpu()), nrow=columns, padding=2, pad_value=255)
    figure = new_figure(1.2 + 0.8 * columns, 0.6 + 0.8 * len(GOALS))
    axes = figure.add_subplot()
    axes.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    row, group = grid.shape[1] / len(GOALS), grid.shape[2] / len(FORMAT_NAMES)
    axes.set_yticks([row * (r + 0.5) for r in range(len(GOALS))], labels=GOALS, fontsize=8)
    axes.set_xticks([group * (c + 0.5) for c in range(len(FORMAT_NAMES))], labels=FORMAT_NAMES, fontsize=8)
    axes.set_title("samples: goal (rows) x format (columns)", fontsize=9)
    return figure
