"""EncoderMetrics on hand-built F_Tensors: IoU, colour accuracy and mIoU, hierarchy MSE, pooled over batches."""

from __future__ import annotations

import pytest
import torch

from models.design.encoder.metrics import EncoderMetrics
from models.design.schema import F_COLOR, F_HIERARCHY, F_IMAGE, F_TEXT


def scores(metrics: EncoderMetrics) -> dict[str, float]:
    return {name: metric.compute().item() for name, metric in metrics.by_name("val").items()}


def test_known_f_tensors_give_known_scores() -> None:
    truth = torch.zeros(1, 4, 4, 4)
    truth[0, F_TEXT, :, :2] = 1.0  # text: left half
    truth[0, F_IMAGE, :, 2:] = 1.0
    truth[0, F_COLOR] = 1.0
    truth[0, F_COLOR, :, 0] = 2.0
    predicted = truth.clone()
    predicted[0, F_TEXT] = 0.0
    predicted[0, F_TEXT, :, 1:3] = 1.0  # middle half: overlaps the truth on 4 of 12 pixels
    predicted[0, F_COLOR] = 1.0  # column 0 wrong: class 1 IoU 12/16, class 2 IoU 0
    predicted[0, F_HIERARCHY] = 0.5  # truth 0 everywhere

    metrics = EncoderMetrics()
    metrics.update(predicted, truth)
    assert scores(metrics) == pytest.approx(
        {
            "val/text_iou": 1 / 3,
            "val/image_iou": 1.0,
            "val/color_acc": 0.75,
            "val/color_miou": (0.75 + 0.0) / 2,  # classes absent from both are left out
            "val/hierarchy_mse": 0.25,
            "val/hierarchy_mae_text": 0.5,
        }
    )


def test_iou_pools_pixel_counts_over_batches() -> None:
    truth = torch.zeros(1, 4, 2, 2)
    truth[0, F_TEXT] = 1.0
    half = truth.clone()
    half[0, F_TEXT, 0] = 0.0
    metrics = EncoderMetrics()
    metrics.update(truth, truth)  # 4 of 4
    metrics.update(half, truth)  # 2 of 4
    assert metrics.text_iou.compute().item() == pytest.approx(6 / 8)  # not the mean of 1 and 1/2
