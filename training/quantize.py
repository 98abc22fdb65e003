"""Post-training static int8 quantisation of an exported ONNX model with onnxruntime (QDQ, per-channel).

Activation ranges are calibrated on training/validation images only: calibrating on the test set
would leak it into the model that the test accuracy then judges.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path

import numpy as np
import onnx
import pytorch_lightning as pl
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process


def batch_images(batch: torch.Tensor | tuple | list) -> torch.Tensor:
    """The image tensor of a batch that is either `images` or `(images, labels, ...)`."""
    return batch[0] if isinstance(batch, tuple | list) else batch


class CalibrationImages(CalibrationDataReader):
    """Hands onnxruntime's calibrator one batch of images at a time, as `{input_name: array}`."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self.input_name = input_name
        self.batches = list(batches)
        self._pending: Iterator[np.ndarray] = iter(self.batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._pending, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        self._pending = iter(self.batches)


def calibration_batches(datamodule: pl.LightningDataModule, num_batches: int) -> list[np.ndarray]:
    """Up to `num_batches` image batches: the validation set first (test-time transforms), then training."""
    datamodule.setup("fit")
    loaders = chain(datamodule.val_dataloader(), datamodule.train_dataloader())
    batches = [batch_images(batch).numpy() for batch in islice(loaders, num_batches)]
    if not batches:
        raise ValueError(
            "export.quantize=true needs training or validation data to calibrate on; the datamodule "
            "gave none (check data.val_fraction and the training set)."
        )
    return batches


def quantize_int8(fp32_path: Path, int8_path: Path, calibration: list[np.ndarray]) -> Path:
    """Write a statically quantised (int8 weights per channel, int8 activations, QDQ) copy of `fp32_path`.

    `quant_pre_process` first runs shape inference and graph optimisations (e.g. folding BatchNorm
    into convolutions) so the quantiser sees the graph onnxruntime will actually run.
    """
    input_name = onnx.load(str(fp32_path), load_external_data=False).graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="visioncore-quant-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_static(
            str(prepared),
            str(int8_path),
            CalibrationImages(input_name, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return int8_path
