"""Optimizer + LR-scheduler construction shared by every LightningModule's `configure_optimizers`.

The config gives `_partial_: true` factories; this module decides which parameters get weight decay
and fills a scheduler's `total_steps` from the trainer when the config leaves it null.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

_DECAYED_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


def parameter_groups(module: nn.Module, no_decay_norm_and_bias: bool = True) -> list[dict[str, Any]]:
    """Split trainable parameters into a decayed group (conv/linear weights) and a `weight_decay=0` group.

    Biases, norm layers, embeddings, free-standing parameters and every name returned by the module's
    optional `no_weight_decay()` go to the no-decay group. Empty groups are dropped.
    """
    params = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    if not no_decay_norm_and_bias:
        return [{"params": [p for _, p in params]}]

    skip = set(getattr(module, "no_weight_decay", lambda: set())())
    all_names = {name for name, _ in module.named_parameters()}
    unknown = sorted(skip - all_names)
    if unknown:
        raise ValueError(
            f"{type(module).__name__}.no_weight_decay() lists {unknown}, which are not parameter names of the "
            "module (use the names from module.named_parameters(), e.g. 'core.pos_embed')."
        )

    decayed_ids = {
        id(sub.weight)
        for sub in module.modules()
        if isinstance(sub, _DECAYED_LAYERS) and isinstance(getattr(sub, "weight", None), nn.Parameter)
    }
    decay = [p for name, p in params if id(p) in decayed_ids and name not in skip]
    no_decay = [p for name, p in params if not (id(p) in decayed_ids and name not in skip)]
    groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _fill_total_steps(
    factory: Callable[..., Any], module: pl.LightningModule, interval: str
) -> Callable[..., Any]:
    """Return `factory` with `total_steps` set from the trainer when it takes one that was left None."""
    func = factory.func if isinstance(factory, functools.partial) else factory
    keywords = factory.keywords if isinstance(factory, functools.partial) else {}
    try:
        takes_total = "total_steps" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        takes_total = False
    if not takes_total or keywords.get("total_steps") is not None:
        return factory

    trainer = module.trainer
    if interval == "step":
        total = trainer.estimated_stepping_batches
        source = "trainer.estimated_stepping_batches"
    else:
        total = trainer.max_epochs
        source = "trainer.max_epochs"
    if total is None or total < 1 or (isinstance(total, float) and math.isinf(total)):
        raise ValueError(
            f"model.lr_schedule.scheduler.total_steps is null and {source} is {total!r}: set "
            "model.lr_schedule.scheduler.total_steps explicitly, or set trainer.max_steps / trainer.max_epochs."
        )
    return functools.partial(factory, total_steps=int(total))


def configure_optimization(
    module: pl.LightningModule,
    optimizer: Callable[..., Optimizer],
    lr_schedule: Mapping[str, Any] | None,
    no_decay_norm_and_bias: bool = True,
) -> dict[str, Any]:
    """Build what `configure_optimizers` returns from an optimizer factory and an optional schedule.

    `lr_schedule` is `{scheduler: factory(optimizer), interval: "step"|"epoch", frequency: 1,
    monitor: str|None}`; a scheduler `total_steps` left None is filled from the trainer.
    """
    opt = optimizer(parameter_groups(module, no_decay_norm_and_bias))
    if lr_schedule is None:
        return {"optimizer": opt}

    unknown = set(lr_schedule) - {"scheduler", "interval", "frequency", "monitor"}
    if unknown or "scheduler" not in lr_schedule:
        raise ValueError(
            f"model.lr_schedule must have keys scheduler, interval, frequency, monitor; got {sorted(lr_schedule)}."
        )
    interval = lr_schedule.get("interval", "step")
    if interval not in ("step", "epoch"):
        raise ValueError(f"model.lr_schedule.interval must be 'step' or 'epoch', got {interval!r}.")
    frequency = int(lr_schedule.get("frequency", 1))
    monitor = lr_schedule.get("monitor")

    factory = _fill_total_steps(lr_schedule["scheduler"], module, interval)
    scheduler = factory(opt)
    if isinstance(scheduler, ReduceLROnPlateau) and not monitor:
        raise ValueError(
            "ReduceLROnPlateau needs a metric to watch: set model.lr_schedule.monitor "
            "(e.g. model.lr_schedule.monitor=val/loss) and model.lr_schedule.interval=epoch."
        )
    config: dict[str, Any] = {"scheduler": scheduler, "interval": interval, "frequency": frequency}
    if monitor:
        config["monitor"] = monitor
    return {"optimizer": opt, "lr_scheduler": config}
