"""The abstractor's evaluation metrics for one stage and one input source (true or encoder-read F_Tensors).

All are torchmetrics states (sums and counts), so values are exact under DDP and read once per epoch.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.regression import MeanAbsoluteError

from models.design.schema import FORMATS, GOALS, GRAMMAR_NAMES, TONE_MEDIAN

ACCURACIES = ("goal_acc", "format_acc")  # higher is better; every other metric here is an error


class AbstractorMetrics(nn.Module):
    """Goal and format accuracy, tone MAE (mean over axes) and its ratio to the constant predictor's on the
    same designs (TONE_MEDIAN on every axis; the target is at most half), grammar MAE per dimension and its
    maximum."""

    def __init__(self) -> None:
        super().__init__()
        # validate_args=False keeps host-side value checks out of the evaluation loop
        self.goal_acc = MulticlassAccuracy(len(GOALS), average="micro", validate_args=False)
        self.format_acc = MulticlassAccuracy(len(FORMATS), average="micro", validate_args=False)
        self.tone_mae = MeanAbsoluteError()
        self.constant_tone_mae = MeanAbsoluteError()
        self.grammar_mae = MeanAbsoluteError(num_outputs=len(GRAMMAR_NAMES))

    def update(self, predicted: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]) -> None:
        self.goal_acc.update(predicted["goal"], batch["goal"])
        self.format_acc.update(predicted["format"], batch["format"])
        self.tone_mae.update(predicted["tone"], batch["tone"])
        self.constant_tone_mae.update(torch.full_like(batch["tone"], TONE_MEDIAN), batch["tone"])
        self.grammar_mae.update(predicted["grammar"], batch["grammar"])

    def compute(self) -> dict[str, torch.Tensor]:
        """`goal_acc`, `format_acc`, `tone_mae`, `tone_vs_constant`, `grammar_mae/<name>` per GRAMMAR_NAMES,
        `grammar_mae_max`."""
        grammar = self.grammar_mae.compute()
        values = {
            "goal_acc": self.goal_acc.compute(),
            "format_acc": self.format_acc.compute(),
            "tone_mae": self.tone_mae.compute(),
        }
        values["tone_vs_constant"] = values["tone_mae"] / self.constant_tone_mae.compute()
        values |= {f"grammar_mae/{name}": grammar[i] for i, name in enumerate(GRAMMAR_NAMES)}
        values["grammar_mae_max"] = grammar.max()
        return values

    def reset(self) -> None:
        for metric in self.children():  # every metric above: none can be left out
            metric.reset()


def encoder_gap(
    true: Mapping[str, torch.Tensor], encoded: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """What reading the encoder's F_Tensors instead of the true ones costs, per metric (positive: worse):
    accuracy lost for accuracies, error added for errors."""
    return {
        name: (true[name] - encoded[name]) if name in ACCURACIES else (encoded[name] - true[name])
        for name in true
    }
