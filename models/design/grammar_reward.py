"""`GrammarReward`: phase 3's frozen judge — design images -> the abstractor's V_Grammar of the encoder's reading.

The trained encoder turns an image into its differentiable soft structure and the trained abstractor reads
the four grammar scores (alignment, contrast, balance, hierarchy; each in [0, 1]) from it, so the scores
are differentiable in the pixels: the fine-tune loop backpropagates them into the decoder's weights, the
innovation loop into the sampler's initial latents.

Why the abstractor's reading is the reward: the analytic grammar (`datamodules.design.grammar`) is computed
from a design's layout (boxes, sizes, colours), and generated images have only pixels. The abstractor was
trained to predict the analytic scores from structure, and its reading is differentiable. Phase 3 also
reports `AnalyticGrammar`, the analytic scores of the layout the encoder reads in a sample
(`layout_reading`), which is not differentiable and has no weights the loss could fool; each reading's error
on real test designs says how far to trust it. The reward reads each image with its letterbox painted in
(`with_letterbox`), because the format is given and the letterbox is where a gradient fools the encoder
most cheaply.

The judges are loaded from the encoder and abstractor runs' checkpoints (`DesignFeatures.from_checkpoints`:
frozen, eval mode, at the encoder run's training resolution). The decoder may work at a smaller size
(32² on a CPU) than the judges were trained at (128²): images are resized bilinearly to the judges'
resolution first, because the encoder's features hold at the scale it learned them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from datamodules.design.layout import design_box, shape_coverage
from datamodules.design.layout_reading import read_grammar
from datamodules.design.render import pixel_centres
from models.design.color_vocabulary import OUTSIDE_RGB
from models.design.encoder.reading import resize_image
from models.design.features import DesignFeatures
from models.design.schema import FORMAT_NAMES, FORMATS, GRAMMAR_NAMES
from models.design.stages import existing_checkpoint
from training.toolkit.errors import UserError

# The judges phase 3 reports, by their key in the stages' frozen modules -> the name of their metrics:
# the judge in the loss; an independent one (other encoder and abstractor runs) that the loss never saw;
# and the renderer's analytic scores of the layout the loss's encoder reads (no learned scorer at all), so
# a gain that only fools the loss's judge shows as a gap between them.
JUDGED_AS = {"judge": "grammar", "independent": "grammar_independent", "analytic": "grammar_analytic"}
INDEPENDENT_KEY = "model.independent_judge"
CHECKPOINT_NAMES = ("encoder_checkpoint", "abstractor_checkpoint")


class GrammarReward(nn.Module):
    """Images (B, 3, H, W) in [-1, 1] -> V_Grammar (B, 4) in [0, 1], differentiable in the images.

    The judges are frozen (no parameter takes gradients) and stay in eval mode: owners keep this module
    out of their own `state_dict` (a plain dict attribute) and move it to their device themselves.
    """

    def __init__(self, reader: DesignFeatures) -> None:
        super().__init__()
        self.reader = reader
        self.eval().requires_grad_(False)

    @classmethod
    def from_checkpoints(
        cls,
        encoder_checkpoint: str | os.PathLike,
        abstractor_checkpoint: str | os.PathLike,
        config_key: str = "model",
    ) -> GrammarReward:
        """The judge of an encoder run and an abstractor run (`config_key` names the config holding
        `encoder_checkpoint` / `abstractor_checkpoint`, for errors)."""
        for name, path in (
            ("encoder_checkpoint", encoder_checkpoint),
            ("abstractor_checkpoint", abstractor_checkpoint),
        ):
            existing_checkpoint(path, f"{config_key}.{name}")
        return cls(DesignFeatures.from_checkpoints(encoder_checkpoint, abstractor_checkpoint, config_key))

    @property
    def resolution(self) -> int | None:
        """The side images are read at (the encoder run's training resolution); None: as they come."""
        return self.reader.resolution

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.resolution
        if size is not None and images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
        return self.reader.abstractor(self.reader.encoder.soft_structure(images))["grammar"]


class AnalyticGrammar(nn.Module):
    """Images (B, 3, H, W) in [-1, 1] -> the renderer's analytic V_Grammar (B, 4) of the layout the encoder
    reads in them (its hard F_Tensor, `layout_reading.read_grammar`): the scores every real design is
    labelled with, with no learned scorer between pixels and number. Not differentiable, and it syncs with
    the host (the layout is read in numpy): for evaluation only."""

    def __init__(self, judge: GrammarReward) -> None:
        super().__init__()
        self.encoder, self.resolution = judge.reader.encoder, judge.resolution
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        f_tensors = self.encoder.predict_f_tensor(resize_image(images, self.resolution)).float().cpu().numpy()
        return torch.from_numpy(np.stack([read_grammar(f_tensor) for f_tensor in f_tensors])).to(
            images.device
        )


def phase3_judges(hp: Mapping[str, Any]) -> dict[str, nn.Module]:
    """The judges of a phase-3 stage's config (`model.encoder_checkpoint`, `model.abstractor_checkpoint`,
    `model.independent_judge`), by their JUDGED_AS key: the loss's, the independent one when set, the analytic."""
    judge = GrammarReward.from_checkpoints(hp["encoder_checkpoint"], hp["abstractor_checkpoint"], "model")
    judges: dict[str, nn.Module] = {"judge": judge}
    independent = independent_judge(hp.get("independent_judge"), hp)
    if independent is not None:
        judges["independent"] = independent
    judges["analytic"] = AnalyticGrammar(judge)
    return judges


@functools.cache  # read every training step: built and copied to the device once (callers do not modify it)
def inside_formats(resolution: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(len(FORMATS), R, R) bool on `device`: the pixels inside each format's rectangle, as the renderer draws it."""
    centres = pixel_centres(resolution)
    return torch.from_numpy(
        np.stack([shape_coverage(design_box(FORMATS[name]), centres, centres) for name in FORMAT_NAMES])
    ).to(device)


def with_letterbox(images: torch.Tensor, formats: torch.Tensor) -> torch.Tensor:
    """`images` (B, 3, R, R) in [-1, 1] with each one's letterbox, the canvas outside its format (`formats`: B
    indices into FORMATS), painted exactly the renderer's OUTSIDE_RGB; differentiable inside the format.

    The reward's view of a sample: the format is given, so the decoder has nothing to gain in the letterbox.
    Without it, the reward's gradient shifts letterbox pixels by a few grey levels until the encoder reads
    them as page (docs/design.md, phase 3): the judged balance and whitespace rise while the format is lost."""
    inside = inside_formats(images.shape[-1], images.device)[formats].unsqueeze(1)
    outside = torch.tensor(OUTSIDE_RGB, dtype=images.dtype, device=images.device).div(127.5).sub(1.0)
    return torch.where(inside, images, outside.view(1, 3, 1, 1))


def reward_grammar(
    judge: GrammarReward, images: torch.Tensor, formats: torch.Tensor, letterbox: bool
) -> torch.Tensor:
    """A phase-3 loss's reading (B, 4) of `images` of the given `formats`: with `letterbox` (the stages'
    `model.reward_letterbox`), of the images with their letterbox painted in, so that only the page inside
    the format can earn reward."""
    return judge(with_letterbox(images, formats) if letterbox else images)


def grammar_table(scores: torch.Tensor, prefix: str) -> dict[str, torch.Tensor]:
    """Per-design grammar (B, 4) -> `{<prefix>/mean, <prefix>/<name>}`: the mean over designs of the mean of
    the four scores, and of each score (tensors, for `self.log_dict`)."""
    means = scores.float().mean(dim=0)
    return {
        f"{prefix}/mean": means.mean(),
        **{f"{prefix}/{n}": means[i] for i, n in enumerate(GRAMMAR_NAMES)},
    }


def independent_judge(given: Mapping[str, Any] | None, loss_judge: Mapping[str, Any]) -> GrammarReward | None:
    """The judge of `model.independent_judge` (its `encoder_checkpoint` and `abstractor_checkpoint`), None
    when neither is set. `loss_judge` holds the checkpoints of the judge in the loss, which it must not be."""
    given = dict(given or {})
    unknown = set(given) - set(CHECKPOINT_NAMES)
    paths = [given.get(name) for name in CHECKPOINT_NAMES]
    if unknown or (any(paths) and not all(paths)):
        raise UserError(
            f"{INDEPENDENT_KEY} takes both encoder_checkpoint and abstractor_checkpoint (runs other than the "
            f"loss's judge), or neither; got {given}. Set {INDEPENDENT_KEY}.encoder_checkpoint=... and "
            f"{INDEPENDENT_KEY}.abstractor_checkpoint=..., or leave both null."
        )
    if not any(paths):
        return None
    if all(
        _same_file(path, loss_judge.get(name)) for path, name in zip(paths, CHECKPOINT_NAMES, strict=True)
    ):
        raise UserError(
            f"{INDEPENDENT_KEY} names the same encoder and abstractor checkpoints as the judge in the loss "
            f"(model.encoder_checkpoint, model.abstractor_checkpoint), so it is not independent: give it "
            "another encoder or abstractor run (e.g. another seed), or leave both null."
        )
    return GrammarReward.from_checkpoints(*paths, INDEPENDENT_KEY)


def _same_file(first: str | os.PathLike | None, second: str | os.PathLike | None) -> bool:
    return bool(first and second) and os.path.realpath(first) == os.path.realpath(second)


def judges_of(frozen: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
    """The grammar judges among a stage's frozen modules (`JUDGED_AS` keys), the loss's first."""
    return {name: frozen[name] for name in JUDGED_AS if name in frozen}


def judge_all(judges: Mapping[str, nn.Module], images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every judge's grammar (B, 4) of `images`."""
    return {name: judge(images) for name, judge in judges.items()}


def judged_tables(scores: Mapping[str, torch.Tensor], stage: str, name: str = "") -> dict[str, torch.Tensor]:
    """`grammar_table` of each judge's scores, under `<stage>/<grammar | grammar_independent>[/<name>]`."""
    table = {}
    for judge, grammar in scores.items():
        table |= grammar_table(grammar, "/".join(filter(None, (stage, JUDGED_AS[judge], name))))
    return table


@torch.no_grad()
def real_tables(
    judges: Mapping[str, nn.Module], batch: Mapping[str, torch.Tensor], stage: str = "test"
) -> dict:
    """Each judge's reading of a batch of real designs, `<stage>/<metric>/real/*`, and how far it is from their
    analytic labels (`batch["grammar"]`), `<stage>/<metric>_error/real/*` (mean absolute error per score,
    `/mean` over the four): how far each reading of samples can be trusted."""
    scores = judge_all(judges, batch["image"])
    table = judged_tables(scores, stage, "real")
    for judge, grammar in scores.items():
        error = (grammar.float() - batch["grammar"].float()).abs()
        table |= grammar_table(error, f"{stage}/{JUDGED_AS[judge]}_error/real")
    return table


def before_after_tables(
    before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor], stage: str = "test"
) -> dict[str, torch.Tensor]:
    """Each judge's grammar of the same designs before and after phase 3, and its gain
    (`<stage>/<metric>_gain` = after mean − before mean)."""
    table = judged_tables(before, stage, "before") | judged_tables(after, stage, "after")
    for judge in after:
        metric = f"{stage}/{JUDGED_AS[judge]}"
        table[f"{metric}_gain"] = table[f"{metric}/after/mean"] - table[f"{metric}/before/mean"]
    return table
