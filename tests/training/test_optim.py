"""configure_optimization: weight-decay groups, total_steps from the trainer, scheduler config errors."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tests.helpers import quiet_trainer
from training.toolkit.optim import configure_optimization, parameter_groups
from training.toolkit.schedulers import LinearWarmupCosineAnnealingLR


class Mixed(pl.LightningModule):
    """One of each parameter kind the grouping has to sort."""

    def __init__(self, skip: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)  # weight: decay, bias: no decay
        self.bn = nn.BatchNorm2d(4)  # no decay (2)
        self.embed = nn.Embedding(5, 4)  # no decay
        self.norm = nn.LayerNorm(4)  # no decay (2)
        self.head = nn.Linear(4, 2)  # weight: decay, bias: no decay
        self.pos = nn.Parameter(torch.zeros(4))  # free-standing: no decay
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)  # excluded
        self.skip = set(skip)

    def no_weight_decay(self) -> set[str]:
        return self.skip


def _ids(params: list[torch.Tensor]) -> set[int]:
    return {id(p) for p in params}


def test_weight_decay_only_on_conv_and_linear_weights() -> None:
    module = Mixed()
    out = configure_optimization(
        module, functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.05), None
    )
    assert set(out) == {"optimizer"}
    decay, no_decay = out["optimizer"].param_groups
    assert _ids(decay["params"]) == _ids([module.conv.weight, module.head.weight])
    assert decay["weight_decay"] == 0.05
    assert no_decay["weight_decay"] == 0.0
    assert len(no_decay["params"]) == 8
    assert _ids(no_decay["params"]) == _ids(
        [
            module.conv.bias,
            *module.bn.parameters(),
            module.embed.weight,
            *module.norm.parameters(),
            module.head.bias,
            module.pos,
        ]
    )


def test_no_weight_decay_names_are_honoured_and_checked() -> None:
    module = Mixed(skip=("head.weight",))
    decay, no_decay = parameter_groups(module)
    assert _ids(decay["params"]) == {id(module.conv.weight)}
    assert id(module.head.weight) in _ids(no_decay["params"])
    with pytest.raises(ValueError, match=r"no_weight_decay\(\) lists \['head.wieght'\]"):
        parameter_groups(Mixed(skip=("head.wieght",)))


def test_grouping_can_be_turned_off() -> None:
    (group,) = parameter_groups(Mixed(), no_decay_norm_and_bias=False)
    assert len(group["params"]) == 10 and "weight_decay" not in group


class Regressor(pl.LightningModule):
    def __init__(self, lr_schedule: dict | None) -> None:
        super().__init__()
        self.net = nn.Linear(2, 1)
        self.lr_schedule = lr_schedule

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> dict:
        return configure_optimization(self, functools.partial(torch.optim.SGD, lr=0.2), self.lr_schedule)


def test_total_steps_filled_from_trainer(tmp_path) -> None:
    schedule = {
        "scheduler": functools.partial(
            LinearWarmupCosineAnnealingLR, warmup_steps=2, total_steps=None, min_lr_ratio=0.25
        ),
        "interval": "step",
        "monitor": None,
    }
    module = Regressor(schedule)
    data = DataLoader(TensorDataset(torch.randn(16, 2), torch.randn(16, 1)), batch_size=2)  # 8 batches
    trainer = quiet_trainer(tmp_path, max_epochs=3, accumulate_grad_batches=2)
    trainer.fit(module, data)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert trainer.lr_scheduler_configs[0].interval == "step"
    assert scheduler.lr_lambdas[0].keywords["total_steps"] == 12 == trainer.global_step
    assert scheduler.last_epoch == 12
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.2 * 0.25)


def test_epoch_interval_fills_total_steps_from_max_epochs() -> None:
    module = Regressor(
        {
            "scheduler": functools.partial(LinearWarmupCosineAnnealingLR, warmup_steps=1, total_steps=None),
            "interval": "epoch",
        }
    )
    module._trainer = SimpleNamespace(max_epochs=7, estimated_stepping_batches=1000)
    out = configure_optimization(module, functools.partial(torch.optim.SGD, lr=0.1), module.lr_schedule)
    assert out["lr_scheduler"]["scheduler"].lr_lambdas[0].keywords["total_steps"] == 7
    assert out["lr_scheduler"]["interval"] == "epoch" and out["lr_scheduler"]["frequency"] == 1


def test_explicit_total_steps_is_kept() -> None:
    module = Regressor(
        {"scheduler": functools.partial(LinearWarmupCosineAnnealingLR, warmup_steps=1, total_steps=50)}
    )
    out = configure_optimization(module, functools.partial(torch.optim.SGD, lr=0.1), module.lr_schedule)
    assert out["lr_scheduler"]["scheduler"].lr_lambdas[0].keywords["total_steps"] == 50


def test_plateau_needs_a_monitor() -> None:
    module = Regressor(None)
    plateau = functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=2)
    with pytest.raises(ValueError, match=r"model\.lr_schedule\.monitor"):
        configure_optimization(
            module,
            functools.partial(torch.optim.SGD, lr=0.1),
            {"scheduler": plateau, "interval": "epoch", "monitor": None},
        )
    out = configure_optimization(
        module,
        functools.partial(torch.optim.SGD, lr=0.1),
        {"scheduler": plateau, "interval": "epoch", "monitor": "val/loss"},
    )
    assert out["lr_scheduler"]["monitor"] == "val/loss"


def test_bad_schedule_keys_are_named() -> None:
    module = Regressor(None)
    sgd = functools.partial(torch.optim.SGD, lr=0.1)
    step_lr = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=2)
    with pytest.raises(ValueError, match="interval must be 'step' or 'epoch'"):
        configure_optimization(module, sgd, {"scheduler": step_lr, "interval": "batch"})
    with pytest.raises(ValueError, match="model.lr_schedule must have keys"):
        configure_optimization(module, sgd, {"schedular": step_lr})
