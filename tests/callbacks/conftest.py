"""Tiny in-memory modules, datasets and a trainer factory shared by the callback tests."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tests.helpers import quiet_trainer


class RandomRegression(Dataset):
    """`n` fixed random (x, y) pairs with `dim` features; deterministic given `seed`."""

    def __init__(self, n: int = 32, dim: int = 4, seed: int = 0, sleep_s: float = 0.0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, dim, generator=generator)
        self.y = self.x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=generator)
        self.sleep_s = sleep_s

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return self.x[index], self.y[index]


def make_loader(n: int = 32, batch_size: int = 4, sleep_s: float = 0.0, seed: int = 0) -> DataLoader:
    """Unshuffled loader over `RandomRegression` (same batches in every run)."""
    return DataLoader(RandomRegression(n=n, seed=seed, sleep_s=sleep_s), batch_size=batch_size, shuffle=False)


class TinyRegressor(pl.LightningModule):
    """Linear regression with SGD+momentum (or AdamW); can poison the loss at chosen global steps."""

    def __init__(
        self,
        dim: int = 4,
        lr: float = 0.05,
        optimizer: str = "sgd",
        nan_loss_at: tuple[int, ...] = (),
        nan_grad_at: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self.net = nn.Linear(dim, 1)
        self.lr = lr
        self.optimizer_name = optimizer
        self.nan_loss_at = set(nan_loss_at)
        self.nan_grad_at = set(nan_grad_at)
        self.temperature = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def compute_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        if self.global_step in self.nan_loss_at:
            loss = loss * math.nan
        if self.global_step in self.nan_grad_at:  # finite loss, NaN gradient for the bias only
            loss = loss + _NaNGrad.apply(self.net.bias).sum() * 0.0
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.compute_loss(batch)
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_name == "adamw":
            return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=0.1)
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


class ValidatedRegressor(TinyRegressor):
    """TinyRegressor with a validation step logging `val/loss`."""

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("val/loss", self.compute_loss(batch))


class _NaNGrad(torch.autograd.Function):
    """Identity forward, NaN backward: a finite loss whose gradient is not finite."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return torch.full_like(grad, math.nan)


class ManualRegressor(TinyRegressor):
    """The same regression with manual optimization (the GAN-style loop)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.automatic_optimization = False

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        opt = self.optimizers()
        loss = self.compute_loss(batch)
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=True)
        return loss.detach()


@pytest.fixture
def make_trainer(tmp_path: Path) -> Callable[..., pl.Trainer]:
    """Factory for a quiet CPU trainer rooted in `tmp_path`; keyword arguments override the defaults."""

    def factory(**overrides: Any) -> pl.Trainer:
        return quiet_trainer(tmp_path, **({"num_sanity_val_steps": 0, "log_every_n_steps": 1} | overrides))

    return factory


def read_metrics_csv(trainer: pl.Trainer) -> list[dict[str, str]]:
    """Rows of the CSVLogger's metrics.csv (the trainer must have been built with a CSVLogger)."""
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def count_field_reads(monkeypatch) -> Callable[[Any], list[str]]:
    """`count_field_reads(module)`: the suffixes of every `read_fields` call that `module` makes (the host reads
    of the heartbeat callbacks), recorded in the returned list."""
    from callbacks.step_readings import read_fields

    def watch(module: Any) -> list[str]:
        reads: list[str] = []

        def counting_read(metrics, fields, suffix):
            reads.append(suffix)
            return read_fields(metrics, fields, suffix)

        monkeypatch.setattr(module, "read_fields", counting_read)
        return reads

    return watch
