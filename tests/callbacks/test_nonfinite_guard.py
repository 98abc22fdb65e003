"""NonFiniteGuard: a NaN step leaves weights and optimizer state untouched, is counted, and K in a row stop."""

from __future__ import annotations

import copy

import pytest
import pytorch_lightning as pl
import torch

from callbacks.nonfinite_guard import NonFiniteGuard, grads_finite
from tests.callbacks.conftest import ManualRegressor, TinyRegressor, make_loader

pytestmark = pytest.mark.filterwarnings("ignore:NonFiniteGuard. NaN/Inf gradients")


class StepSnapshot(pl.Callback):
    """Weights and optimizer state just before and just after the batch at `step`; losses of every step."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.before: dict | None = None
        self.after: dict | None = None
        self.losses: list[float] = []

    def _state(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        return {
            "params": copy.deepcopy(pl_module.state_dict()),
            "opt": copy.deepcopy(trainer.optimizers[0].state_dict()["state"]),
        }

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            self.before = self._state(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))
        if self.before is not None and self.after is None:
            self.after = self._state(trainer, pl_module)


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _assert_same(a[key], b[key])
        else:
            assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), key


@pytest.mark.parametrize("module_cls", [TinyRegressor, ManualRegressor], ids=["automatic", "manual"])
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_nan_step_is_skipped_exactly(make_trainer, module_cls, optimizer: str) -> None:
    guard, snapshot = NonFiniteGuard(max_consecutive=3), StepSnapshot(step=3)
    module = module_cls(nan_loss_at=(3,), optimizer=optimizer)
    trainer = make_trainer(callbacks=[snapshot, guard])
    trainer.fit(module, make_loader(n=32))  # 8 steps

    assert torch.isnan(torch.tensor(snapshot.losses[3]))
    _assert_same(snapshot.before["params"], snapshot.after["params"])  # weights untouched
    _assert_same(snapshot.before["opt"], snapshot.after["opt"])  # momentum / Adam moments and step untouched
    assert snapshot.before["opt"]  # (the state existed: steps 0-2 ran)
    assert guard.skipped_total == 1 and guard.consecutive == 0
    assert trainer.global_step == 8  # training went on
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert float(trainer.callback_metrics["guard/skipped_steps"]) == 1.0


def test_finite_loss_with_nan_gradient_is_caught(make_trainer) -> None:
    guard, snapshot = NonFiniteGuard(), StepSnapshot(step=2)
    module = TinyRegressor(nan_grad_at=(2,))
    make_trainer(callbacks=[snapshot, guard]).fit(module, make_loader(n=16))
    assert torch.isfinite(torch.tensor(snapshot.losses[2]))
    _assert_same(snapshot.before["params"], snapshot.after["params"])
    assert guard.skipped_total == 1
    assert all(torch.isfinite(p).all() for p in module.parameters())


@pytest.mark.parametrize("module_cls", [TinyRegressor, ManualRegressor], ids=["automatic", "manual"])
def test_consecutive_nan_steps_stop_training(make_trainer, module_cls) -> None:
    guard = NonFiniteGuard(max_consecutive=3)
    module = module_cls(nan_loss_at=tuple(range(2, 100)))
    with pytest.raises(RuntimeError, match=r"3 optimizer steps in a row .* learning rate .* precision"):
        make_trainer(max_epochs=5, callbacks=[guard]).fit(module, make_loader(n=32))
    assert guard.skipped_total == 3
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_counters_are_checkpointed(make_trainer, tmp_path) -> None:
    guard = NonFiniteGuard()
    trainer = make_trainer(callbacks=[guard])
    trainer.fit(TinyRegressor(nan_loss_at=(1, 2)), make_loader(n=16))
    trainer.save_checkpoint(tmp_path / "guard.ckpt")
    state = torch.load(tmp_path / "guard.ckpt", weights_only=True)["callbacks"]["NonFiniteGuard"]
    assert state == {"skipped_total": 2, "consecutive": {0: 0}}

    restored = NonFiniteGuard()
    restored.load_state_dict(state)
    assert restored.skipped_total == 2 and restored.consecutive == 0


def test_grads_finite_flag() -> None:
    assert bool(grads_finite([torch.ones(3), torch.ones(2, dtype=torch.float16)]))
    assert not bool(grads_finite([torch.ones(3), torch.tensor([1.0, float("inf")])]))
    assert not bool(grads_finite([torch.tensor([float("nan")])]))
    assert bool(
        grads_finite([torch.full((4,), 6e4, dtype=torch.float16)])
    )  # finite, though its 2-norm overflows


def test_gradscaler_overflow_is_not_held_against_the_limit(make_trainer) -> None:
    from pytorch_lightning.plugins import MixedPrecision

    guard = NonFiniteGuard(max_consecutive=2)
    amp = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=2.0**4))
    with pytest.raises(RuntimeError, match="2 optimizer steps in a row"):
        make_trainer(max_epochs=10, plugins=[amp], callbacks=[guard]).fit(
            TinyRegressor(nan_loss_at=tuple(range(2, 1000))), make_loader(n=32)
        )
    # scales 16, 8, 4, 2 are overflow the scaler handles; at scale 1 and 0.5 the skips count
    assert guard.skipped_total == 6
