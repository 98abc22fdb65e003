"""`CompositeLoss`: the encoder's training objective (seed 004), one term per F_Tensor channel group.

total = dice_weight * Dice(text, image) + bce_weight * BCE(text, image)
        + color_weight * CE(colour ID) + hierarchy_weight * MSE(hierarchy)

The hierarchy MSE is over all pixels (the seed's) or, with `hierarchy_text_share` s, s * MSE over the
text ink + (1 - s) * MSE elsewhere: text is ~2 % of a design's pixels, so the plain MSE lets the encoder
blur headline ink to 0.8 (a subhead's level) at a cost of 0.001, and the abstractor then reads the
headline as a subhead.

Dice is the soft Dice loss of each mask over the whole batch (a design with no image block then
contributes no 0/0 term), averaged over the two masks; BCE on the same logits gives the masks a
per-pixel gradient from the first step, where Dice alone is flat.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models.design.nets.encoder_heads import EncoderOutput
from models.design.schema import F_HIERARCHY, F_IMAGE, F_TEXT, color_ids
from training.toolkit.errors import UserError


class LossParts(NamedTuple):
    """The weighted total and its unweighted terms (for logging)."""

    total: torch.Tensor
    dice: torch.Tensor
    bce: torch.Tensor
    color_ce: torch.Tensor
    hierarchy_mse: torch.Tensor


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - (2 sum(p t) + smooth) / (sum p + sum t + smooth) per channel of (B, C, H, W), averaged over C."""
    probs = torch.sigmoid(logits)
    dims = (0, 2, 3)
    overlap = (probs * target).sum(dims)
    total = probs.sum(dims) + target.sum(dims)
    return (1.0 - (2.0 * overlap + smooth) / (total + smooth)).mean()


class CompositeLoss(nn.Module):
    """Dice (+ BCE) on the masks, cross-entropy on the colour IDs, MSE on the hierarchy map."""

    def __init__(
        self,
        dice_weight: float = 1.0,
        color_weight: float = 0.5,
        hierarchy_weight: float = 1.0,
        bce_weight: float = 1.0,
        dice_smooth: float = 1.0,
        hierarchy_text_share: float | None = None,
    ) -> None:
        super().__init__()
        self.dice_weight = dice_weight
        self.color_weight = color_weight
        self.hierarchy_weight = hierarchy_weight
        self.bce_weight = bce_weight
        self.dice_smooth = dice_smooth
        if hierarchy_text_share is not None and not 0.0 < hierarchy_text_share < 1.0:
            raise UserError(
                f"model.loss.hierarchy_text_share={hierarchy_text_share}: use a share in (0, 1) "
                "(0.5 weighs text ink and the rest equally) or null for the plain MSE over all pixels."
            )
        self.hierarchy_text_share = hierarchy_text_share

    def forward(self, output: EncoderOutput, f_tensor: torch.Tensor) -> LossParts:
        """Loss of the heads `output` against the true F_Tensor (B, 4, H, W)."""
        mask_logits = torch.cat([output.text, output.image], dim=1).float()
        masks = f_tensor[:, [F_TEXT, F_IMAGE]].float()
        dice = soft_dice_loss(mask_logits, masks, self.dice_smooth)
        bce = F.binary_cross_entropy_with_logits(mask_logits, masks)
        color_ce = F.cross_entropy(output.color.float(), color_ids(f_tensor))
        hierarchy_mse = self.hierarchy_loss(output.hierarchy.float(), f_tensor)
        total = (
            self.dice_weight * dice
            + self.bce_weight * bce
            + self.color_weight * color_ce
            + self.hierarchy_weight * hierarchy_mse
        )
        return LossParts(total=total, dice=dice, bce=bce, color_ce=color_ce, hierarchy_mse=hierarchy_mse)

    def hierarchy_loss(self, hierarchy: torch.Tensor, f_tensor: torch.Tensor) -> torch.Tensor:
        """Squared error of the hierarchy map (B, 1, H, W): the mean over all pixels, or the text-share
        mix of the means over text ink and the rest (pooled over the batch; the plain mean without ink)."""
        squared = (hierarchy - f_tensor[:, F_HIERARCHY : F_HIERARCHY + 1].float()).square()
        share = self.hierarchy_text_share
        if share is None:
            return squared.mean()
        text = (f_tensor[:, F_TEXT : F_TEXT + 1] > 0.5).float()
        ink, rest = text.sum(), (1.0 - text).sum()
        mixed = share * (squared * text).sum() / ink.clamp_min(1.0) + (1.0 - share) * (
            squared * (1.0 - text)
        ).sum() / rest.clamp_min(1.0)
        # masks and torch.where, not boolean indexing or a branch on the batch: no host sync per step
        return torch.where((ink > 0) & (rest > 0), mixed, squared.mean())
