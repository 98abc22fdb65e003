"""What a step or an epoch reports, read cheaply: batch sizes from shapes, peak memory, the loaders' fetch
time, the loss and chosen metric fields (each a single host read), shared by Heartbeat and EpochHeartbeat."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

_LOSS_KEYS = ("train/loss_step", "train/loss", "loss_step", "loss")


def batch_size_of(batch: Any) -> int | None:
    """Leading dimension of the first tensor in a (nested) batch; shapes are host metadata, so no sync.

    A mapping of mappings is a grouped batch (v1: `{session: {key: tensor}}`): its size is the sum of
    the groups' sizes.
    """
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim > 0 else None
    if isinstance(batch, Mapping) and batch and all(isinstance(group, Mapping) for group in batch.values()):
        sizes = [batch_size_of(group) for group in batch.values()]
        return sum(size for size in sizes if size is not None) or None
    items = (
        batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    )
    for item in items:
        size = batch_size_of(item)
        if size is not None:
            return size
    return None


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated on `device`, else the process's peak resident set size, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if resource is None:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def fetch_seconds(trainer: pl.Trainer) -> float | None:
    """Seconds the train loaders have spent making batches (their `fetch_seconds`), or None when one of
    them does not count it."""
    loaders = trainer.train_dataloader
    pending, total = [loaders], 0.0
    while pending:
        loader = pending.pop()
        if isinstance(loader, Mapping):
            pending.extend(loader.values())
        elif isinstance(loader, (list, tuple)):
            pending.extend(loader)
        elif isinstance(getattr(loader, "fetch_seconds", None), float):
            total += loader.fetch_seconds
        else:
            return None
    return total


def read_loss(trainer: pl.Trainer, outputs: Any) -> float:
    """The latest training loss as a Python float (a host read: call it once per interval, not per batch)."""
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    if not isinstance(loss, torch.Tensor):
        metrics = trainer.callback_metrics
        loss = next((metrics[key] for key in _LOSS_KEYS if key in metrics), None)
    return float(loss) if loss is not None else float("nan")


def check_fields(
    fields: Mapping[str, str] | None, where: str, reserved: tuple[str, ...] = ()
) -> dict[str, str]:
    """`fields` (status-line label -> metric key) as a dict; labels must print as one `label=value` token."""
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise ValueError(f"{where}: fields must map labels to metric keys, e.g. {{G_Loss: train/g_loss}}.")
    for label, key in fields.items():
        if not isinstance(label, str) or not label or any(c.isspace() or c == "=" for c in label):
            raise ValueError(
                f"{where}: fields label {label!r} must be a non-empty word without spaces or '='."
            )
        if label in reserved:
            raise ValueError(f"{where}: fields label {label!r} is taken by the report; rename it.")
        if not isinstance(key, str) or not key:
            raise ValueError(
                f"{where}: fields.{label} must be a metric key (e.g. train/g_loss), got {key!r}."
            )
    return dict(fields)


def read_fields(metrics: Mapping[str, Any], fields: Mapping[str, str], suffix: str) -> dict[str, float]:
    """`{label: value}` from `metrics[key + suffix]`, else `metrics[key]`, else nan, in ONE host read.

    Lightning names a metric logged with on_step and on_epoch `<key>_step` / `<key>_epoch`; non-scalar
    values read as nan.
    """
    found: dict[str, torch.Tensor] = {}
    for label, key in fields.items():
        value = metrics.get(key + suffix, metrics.get(key))
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            found[label] = value.detach().reshape(())
    if found:
        device = next(iter(found.values())).device
        read = torch.stack([v.to(device=device, dtype=torch.float32) for v in found.values()]).tolist()
        found = dict(zip(found, read, strict=True))
    return {label: float(found.get(label, math.nan)) for label in fields}
