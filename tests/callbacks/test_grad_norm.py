"""GradNormMonitor: the logged norm equals a reference and is computed only on logging steps."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from torch import nn

from callbacks.grad_norm import GradNormMonitor
from tests.callbacks.conftest import TinyRegressor, make_loader, read_metrics_csv


class ReferenceNorm(pl.Callback):
    """The norm of all gradients concatenated into one vector, per optimizer step (computed independently)."""

    def __init__(self, norm_type: float) -> None:
        self.norm_type = norm_type
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        flat = torch.cat([p.grad.flatten() for p in pl_module.parameters() if p.grad is not None])
        self.norms.append(float(torch.linalg.vector_norm(flat, self.norm_type)))


@pytest.mark.parametrize("norm_type", [2.0, "inf"])
def test_logged_norm_equals_reference_on_log_steps_only(
    make_trainer, tmp_path, monkeypatch, norm_type
) -> None:
    calls = []
    real = torch.nn.utils.get_total_norm
    monkeypatch.setattr(torch.nn.utils, "get_total_norm", lambda *a, **k: calls.append(1) or real(*a, **k))
    reference = ReferenceNorm(float(norm_type))
    trainer = make_trainer(
        logger=CSVLogger(tmp_path),
        log_every_n_steps=3,
        callbacks=[GradNormMonitor(norm_type=norm_type), reference],
    )
    trainer.fit(TinyRegressor(), make_loader(n=40))  # 10 steps

    logged = {
        int(r["step"]): float(r["train/grad_norm"])
        for r in read_metrics_csv(trainer)
        if r.get("train/grad_norm")
    }
    assert sorted(logged) == [2, 5, 8]
    assert len(calls) == 3  # computed on those steps only
    for step, value in logged.items():
        assert value == pytest.approx(reference.norms[step], rel=1e-6)


def test_every_n_steps_thins_the_log_steps(make_trainer) -> None:
    calls = []

    class Counting(GradNormMonitor):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
            if self._due(trainer):
                calls.append(trainer.global_step)
            super().on_before_optimizer_step(trainer, pl_module, optimizer)

    make_trainer(log_every_n_steps=2, callbacks=[Counting(every_n_steps=4)]).fit(
        TinyRegressor(), make_loader(n=48)
    )
    assert calls == [3, 7, 11]


class TwoOptimizers(pl.LightningModule):
    """GAN-style manual optimization: two networks, two optimizers, stepped one after the other."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = nn.Linear(4, 1), nn.Linear(4, 1)
        self.norms: list[tuple[float, float]] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        opt_a, opt_b = self.optimizers()
        grads = []
        for net, opt in ((self.a, opt_a), (self.b, opt_b)):
            loss = nn.functional.mse_loss(net(x), y)
            opt.zero_grad()
            self.manual_backward(loss)
            grads.append(
                float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in net.parameters()])))
            )
            opt.step()
        self.norms.append(tuple(grads))

    def configure_optimizers(self):
        return [torch.optim.SGD(self.a.parameters(), lr=0.1), torch.optim.SGD(self.b.parameters(), lr=0.1)]


def test_per_optimizer_norms_and_total(make_trainer, tmp_path) -> None:
    module = TwoOptimizers()
    trainer = make_trainer(logger=CSVLogger(tmp_path), log_every_n_steps=2, callbacks=[GradNormMonitor()])
    trainer.fit(module, make_loader(n=16))  # 4 batches
    rows = [r for r in read_metrics_csv(trainer) if r.get("train/grad_norm")]
    assert [int(r["step"]) for r in rows] == [1, 3]
    for row in rows:
        n_a, n_b = module.norms[int(row["step"])]
        assert float(row["train/grad_norm_opt0"]) == pytest.approx(n_a, rel=1e-6)
        assert float(row["train/grad_norm_opt1"]) == pytest.approx(n_b, rel=1e-6)
        assert float(row["train/grad_norm"]) == pytest.approx((n_a**2 + n_b**2) ** 0.5, rel=1e-6)
