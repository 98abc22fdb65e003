"""`task=export`: a checkpoint's model as one ONNX file, checked against PyTorch, timed and scored.

Writes `<run dir>/model.onnx` (and, with `export.quantize=true`, a statically quantised
`model.int8.onnx`, see `training.quantize`) and `export.json`; the same report goes into the
run's summary.json. An export whose logits disagree with PyTorch is an error, not a warning.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from training.quantize import batch_images, calibration_batches, quantize_int8
from training.toolkit.checkpoints import load_weights
from training.toolkit.errors import UserError

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4  # max |Δlogit| relative to max(1, max |logit|)
LATENCY_REPEATS = 15
DEFAULT_EVAL_BATCHES = 20  # test batches scored for accuracy (`+export.eval_batches=N` changes it)

Predict = Callable[[np.ndarray], np.ndarray]


class ExportParityError(UserError):
    """The ONNX model's outputs differ from the PyTorch model's beyond the tolerance."""


def export_onnx(
    model: pl.LightningModule, datamodule: pl.LightningDataModule, cfg: DictConfig
) -> dict[str, Any]:
    """Load `cfg.ckpt_path` into `model`, export it to ONNX, check parity and report size, speed, accuracy."""
    load_weights(model, cfg.ckpt_path)
    model.eval()
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    datamodule.prepare_data()
    datamodule.setup("test")
    eval_batches = int(cfg.export.get("eval_batches", DEFAULT_EVAL_BATCHES))
    test_batches = list(islice(datamodule.test_dataloader(), eval_batches))
    if not test_batches:
        raise UserError(
            "task=export needs a test batch to check the export against, but the test set is empty."
        )
    images = batch_images(test_batches[0])
    x = images.numpy()

    def pytorch(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    fp32_path = out_dir / "model.onnx"
    torch.onnx.export(
        model,
        (images,),
        str(fp32_path),
        dynamo=True,
        external_data=False,
        opset_version=int(cfg.export.opset),
        dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    onnx_fp32 = onnx_predictor(fp32_path)
    report: dict[str, Any] = {
        "opset": int(cfg.export.opset),
        "batch_size": len(x),
        "parity": check_parity(pytorch(x), onnx_fp32(x)),
        "eval_batches": len(test_batches),
        "pytorch": measure(pytorch, x, test_batches),
        "onnx": measure(onnx_fp32, x, test_batches, fp32_path),
    }
    if cfg.export.quantize:
        calibration = calibration_batches(datamodule, int(cfg.export.calibration_batches))
        int8_path = quantize_int8(fp32_path, out_dir / "model.int8.onnx", calibration)
        int8 = measure(onnx_predictor(int8_path), x, test_batches, int8_path)
        fp32 = report["onnx"]
        int8["size_ratio"] = int8["size_bytes"] / fp32["size_bytes"]
        int8["test_acc_change"] = None if int8["test_acc"] is None else int8["test_acc"] - fp32["test_acc"]
        int8["calibration_batches"] = len(calibration)
        report["int8"] = int8
    (out_dir / "export.json").write_text(json.dumps(report, indent=2))
    log.info("ONNX export -> %s\n%s", out_dir, format_report(report))
    return report


def onnx_predictor(path: Path) -> Predict:
    """`images -> outputs` with a CPU onnxruntime session using as many threads as PyTorch (fair timings)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return lambda x: session.run(None, {input_name: x})[0]


def measure(
    predict: Predict, x: np.ndarray, batches: Sequence[Any], path: Path | None = None
) -> dict[str, Any]:
    """Latency on `x`, accuracy over `batches` and, for a file, its path and size."""
    file = {"path": str(path), "size_bytes": path.stat().st_size} if path is not None else {}
    return {**file, "latency_ms": median_ms(predict, x), "test_acc": accuracy(predict, batches)}


def check_parity(reference: np.ndarray, exported: np.ndarray) -> dict[str, Any]:
    """Max |Δ| (absolute and relative to the logit scale) and argmax agreement; raises beyond tolerance."""
    max_abs = float(np.abs(reference - exported).max())
    scale = max(1.0, float(np.abs(reference).max()))
    argmax_equal = bool((reference.argmax(axis=1) == exported.argmax(axis=1)).all())
    parity = {
        "max_abs_diff": max_abs,
        "max_rel_diff": max_abs / scale,
        "argmax_equal": argmax_equal,
        "tolerance": PARITY_TOLERANCE,
    }
    if max_abs / scale >= PARITY_TOLERANCE or not argmax_equal:
        raise ExportParityError(
            f"The ONNX model disagrees with PyTorch on a test batch: max |Δlogit| = {max_abs:.3g} (relative "
            f"{max_abs / scale:.3g}, tolerance {PARITY_TOLERANCE}), argmax identical: {argmax_equal}. The exported "
            "file is not trustworthy; try another opset (export.opset=...) or report the failing layer."
        )
    return parity


def median_ms(predict: Predict, x: np.ndarray, repeats: int = LATENCY_REPEATS) -> float:
    """Median wall time of `predict(x)` in ms per batch, after two warm-up calls."""
    for _ in range(2):
        predict(x)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict(x)
        times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times)


def accuracy(predict: Predict, batches: Sequence[Any]) -> float | None:
    """Top-1 accuracy over `(images, labels)` batches, or None when the batches carry no labels."""
    if not all(isinstance(b, tuple | list) and len(b) > 1 for b in batches):
        return None
    correct = sum(
        int((predict(images.numpy()).argmax(axis=1) == labels.numpy()).sum())
        for images, labels, *_ in batches
    )
    return correct / sum(len(b[1]) for b in batches)


def format_report(report: dict[str, Any]) -> str:
    """A short table: size, ms/batch and test accuracy per runtime, then the parity line."""
    rows = [f"{'':14}{'size KB':>9}{'ms/batch':>10}{'test acc':>10}"]
    for name, key in (("pytorch eager", "pytorch"), ("onnx fp32", "onnx"), ("onnx int8", "int8")):
        if key in report:
            entry = report[key]
            size = f"{entry['size_bytes'] / 1024:.1f}" if "size_bytes" in entry else "-"
            acc = "-" if entry["test_acc"] is None else f"{entry['test_acc']:.4f}"
            rows.append(f"{name:14}{size:>9}{entry['latency_ms']:>10.3f}{acc:>10}")
    parity = report["parity"]
    rows.append(
        f"parity (batch {report['batch_size']}): max|Δlogit| {parity['max_abs_diff']:.2e} "
        f"(relative {parity['max_rel_diff']:.2e}), argmax identical: {parity['argmax_equal']}"
    )
    return "\n".join(rows)
