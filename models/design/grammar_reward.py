"""`GrammarReward`: phase 3's frozen judge — design images -> the abstractor's V_Grammar of the encoder's reading.

The trained encoder turns an image into its differentiable soft structure and the trained abstractor reads
the four grammar scores (alignment, contrast, balance, hierarchy; each in [0, 1]) from it, so the scores
are differentiable in the pixels: the fine-tune loop backpropagates them into the decoder's weights, the
innovation loop into the sampler's initial latents.

Why the abstractor's reading is THE score: the analytic grammar (`datamodules.design.grammar`) is computed
from a design's layout (boxes, sizes, colours), and generated images have no layout, only pixels. The
abstractor was trained to predict the analytic scores from structure, so it is the only reading that
exists for samples; phase 3 optimises it and reports it (for real test designs its reading sits beside
their analytic scores, which is how far to trust it).

The judges are loaded from the encoder and abstractor runs' checkpoints (`DesignFeatures.from_checkpoints`:
frozen, eval mode, at the encoder run's training resolution). The decoder may work at a smaller size
(32² on a CPU) than the judges were trained at (128²): images are resized bilinearly to the judges'
resolution first, because the encoder's features hold at the scale it learned them.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from models.design.features import DesignFeatures
from models.design.schema import GRAMMAR_NAMES
from models.design.stages import existing_checkpoint


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


def grammar_table(scores: torch.Tensor, prefix: str) -> dict[str, torch.Tensor]:
    """Per-design grammar (B, 4) -> `{<prefix>/mean, <prefix>/<name>}`: the mean over designs of the mean of
    the four scores, and of each score (tensors, for `self.log_dict`)."""
    means = scores.float().mean(dim=0)
    return {
        f"{prefix}/mean": means.mean(),
        **{f"{prefix}/{n}": means[i] for i, n in enumerate(GRAMMAR_NAMES)},
    }
