"""`EncoderMetrics`: the encoder's streaming scores for one split (torchmetrics states, exact under DDP).

Scores compare the hard F_Tensor the encoder hands on (`encoder_heads.hard_f_tensor`: masks at
probability 0.5, arg-max colour ID, hierarchy clamped to [0, 1]) with the true one. Predictions reach
torchmetrics as integer classes, so it never inspects values on the host to tell logits from labels.
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanMetric, MeanSquaredError, Metric
from torchmetrics.classification import BinaryJaccardIndex, MulticlassAccuracy, MulticlassJaccardIndex

from models.design.schema import F_HIERARCHY, F_IMAGE, F_TEXT, NUM_COLOR_IDS, color_ids


class EncoderMetrics(nn.Module):
    """Text and image IoU, colour-ID pixel accuracy and mean IoU over classes, hierarchy MSE over all pixels
    and MAE over the true text ink (the levels the abstractor tells headline, subhead and body apart by)."""

    def __init__(self) -> None:
        super().__init__()
        self.text_iou = BinaryJaccardIndex(validate_args=False)
        self.image_iou = BinaryJaccardIndex(validate_args=False)
        self.color_acc = MulticlassAccuracy(NUM_COLOR_IDS, average="micro", validate_args=False)
        self.color_miou = MulticlassJaccardIndex(NUM_COLOR_IDS, average="macro", validate_args=False)
        self.hierarchy_mse = MeanSquaredError()
        self.hierarchy_mae_text = MeanMetric()  # weighted by the text mask: no boolean indexing, no sync

    def update(self, predicted: torch.Tensor, truth: torch.Tensor) -> None:
        """Accumulate a batch: predicted and true F_Tensors, both (B, 4, H, W) in the schema's layout."""
        self.text_iou.update(predicted[:, F_TEXT].round().long(), truth[:, F_TEXT].round().long())
        self.image_iou.update(predicted[:, F_IMAGE].round().long(), truth[:, F_IMAGE].round().long())
        predicted_color, true_color = color_ids(predicted), color_ids(truth)
        self.color_acc.update(predicted_color, true_color)
        self.color_miou.update(predicted_color, true_color)
        self.hierarchy_mse.update(predicted[:, F_HIERARCHY].flatten(), truth[:, F_HIERARCHY].flatten())
        error = (predicted[:, F_HIERARCHY] - truth[:, F_HIERARCHY]).abs()
        self.hierarchy_mae_text.update(error, weight=(truth[:, F_TEXT] > 0.5).float())

    def by_name(self, split: str) -> dict[str, Metric]:
        """`{"<split>/text_iou": metric, ...}` for `LightningModule.log_dict` (which computes and resets)."""
        return {f"{split}/{name}": metric for name, metric in self.named_children()}
