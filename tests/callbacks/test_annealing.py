"""ScalarAnnealing: schedule values per step, clamping, dotted/tensor attributes, logging, resume."""

from __future__ import annotations

import pytest
import torch
from pytorch_lightning.loggers import CSVLogger
from torch import nn

from callbacks.annealing import ScalarAnnealing
from tests.callbacks.conftest import TinyRegressor, make_loader, read_metrics_csv


class Palette(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.temperature = 1.0
        self.register_buffer("tau", torch.tensor(1.0))


class Annealed(TinyRegressor):
    """Records the annealed values seen by each training step."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Module()
        self.generator.palette = Palette()
        self.seen: list[tuple[int, float, float]] = []

    def training_step(self, batch, batch_idx):
        palette = self.generator.palette
        self.seen.append((self.global_step, palette.temperature, palette.tau.item()))
        return super().training_step(batch, batch_idx)


def test_values_follow_schedule_monotone_and_clamped(make_trainer) -> None:
    annealing = ScalarAnnealing(
        "generator.palette.temperature", start=2.0, end=0.5, total_steps=5, kind="cosine"
    )
    module = Annealed()
    make_trainer(callbacks=[annealing]).fit(module, make_loader(n=32))  # 8 steps
    values = [t for _, t, _ in module.seen]
    assert values == [annealing.value_at(s) for s in range(8)]
    assert values[0] == 2.0 and values[5:] == [0.5] * 3
    assert all(b < a for a, b in zip(values[:5], values[1:6], strict=True))


def test_tensor_attribute_is_filled_in_place(make_trainer) -> None:
    module = Annealed()
    buffer = module.generator.palette.tau
    annealing = ScalarAnnealing("generator.palette.tau", 1.0, 0.01, total_steps=4, kind="exponential")
    make_trainer(callbacks=[annealing]).fit(module, make_loader(n=24))
    assert module.generator.palette.tau is buffer
    assert [tau for _, _, tau in module.seen] == pytest.approx([1.0, 10**-0.5, 0.1, 10**-1.5, 0.01, 0.01])


def test_value_is_logged_at_log_interval(make_trainer, tmp_path) -> None:
    annealing = ScalarAnnealing("temperature", 1.0, 0.0, total_steps=4, log_name="temp")
    trainer = make_trainer(logger=CSVLogger(tmp_path), log_every_n_steps=2, callbacks=[annealing])
    trainer.fit(TinyRegressor(), make_loader(n=24))
    rows = {
        int(r["step"]): float(r["anneal/temp"]) for r in read_metrics_csv(trainer) if r.get("anneal/temp")
    }
    assert rows == {1: 0.75, 3: 0.25, 5: 0.0}


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
def test_resume_equals_uninterrupted(make_trainer, tmp_path) -> None:
    def annealing() -> ScalarAnnealing:
        return ScalarAnnealing("generator.palette.temperature", 1.0, 0.1, total_steps=10, kind="linear")

    full = Annealed()
    make_trainer(max_steps=12, max_epochs=-1, callbacks=[annealing()]).fit(full, make_loader(n=16))

    first = Annealed()
    trainer = make_trainer(max_steps=6, max_epochs=-1, callbacks=[annealing()])
    trainer.fit(first, make_loader(n=16))
    trainer.save_checkpoint(tmp_path / "mid.ckpt")
    second = Annealed()  # a fresh process: the attribute starts at its default again
    make_trainer(max_steps=12, max_epochs=-1, callbacks=[annealing()]).fit(
        second, make_loader(n=16), ckpt_path=str(tmp_path / "mid.ckpt")
    )
    assert second.seen[0][0] == 6
    assert first.seen + second.seen == full.seen


def test_bad_attribute_and_arguments(make_trainer) -> None:
    with pytest.raises(AttributeError, match="no 'generator.pallete'"):
        make_trainer(callbacks=[ScalarAnnealing("generator.pallete.temperature", 1.0, 0.1, 5)]).fit(
            Annealed(), make_loader()
        )
    with pytest.raises(ValueError, match="non-zero with the same sign"):
        ScalarAnnealing("temperature", 1.0, 0.0, 5, kind="exponential")
    with pytest.raises(ValueError, match="kind must be one of"):
        ScalarAnnealing("temperature", 1.0, 0.0, 5, kind="step")  # type: ignore[arg-type]


class EpochAnnealed(Annealed):
    """Records (epoch, tau) at each training and validation step."""

    def training_step(self, batch, batch_idx):
        self.seen.append((self.current_epoch, self.generator.palette.tau.item(), 0.0))
        return TinyRegressor.training_step(self, batch, batch_idx)

    def validation_step(self, batch, batch_idx) -> None:
        self.seen.append((self.current_epoch, self.generator.palette.tau.item(), 1.0))


def _temperature(**overrides) -> ScalarAnnealing:
    options = dict(kind="geometric", decay=0.5, unit="epoch", log_name="temperature")
    return ScalarAnnealing("generator.palette.tau", 2.0, 0.3, **(options | overrides))


def test_epoch_unit_sets_the_buffer_in_place_per_epoch_and_logs_once(make_trainer, tmp_path) -> None:
    module = EpochAnnealed()
    buffer = module.generator.palette.tau
    trainer = make_trainer(
        max_epochs=5, num_sanity_val_steps=1, logger=CSVLogger(tmp_path), callbacks=[_temperature()]
    )
    trainer.fit(module, make_loader(n=8), make_loader(n=4))  # 2 steps per epoch
    assert module.generator.palette.tau is buffer
    expected = [2.0, 1.0, 0.5, 0.3, 0.3]  # 2 * 0.5**e, clamped at 0.3 (never 0.25)
    sanity, *rest = module.seen
    assert sanity == (0, 2.0, 1.0)  # the sanity check already sees epoch 0's value
    assert rest == [(e, pytest.approx(expected[e]), kind) for e in range(5) for kind in (0.0, 0.0, 1.0)]
    rows = read_metrics_csv(trainer)
    logged = [(int(r["epoch"]), float(r["anneal/temperature"])) for r in rows if r["anneal/temperature"]]
    assert logged == [(e, pytest.approx(value)) for e, value in enumerate(expected)]  # once per epoch
    assert float(trainer.callback_metrics["anneal/temperature"]) == pytest.approx(0.3)


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
def test_epoch_unit_resume_gets_the_value_of_the_resumed_epoch(make_trainer, tmp_path) -> None:
    full = EpochAnnealed()
    make_trainer(max_epochs=6, callbacks=[_temperature(decay=0.8)]).fit(full, make_loader(n=8))

    first = EpochAnnealed()
    trainer = make_trainer(max_epochs=3, callbacks=[_temperature(decay=0.8)])
    trainer.fit(first, make_loader(n=8))
    trainer.save_checkpoint(tmp_path / "epoch3.ckpt")
    second = EpochAnnealed()  # a fresh process: the buffer starts at its default again
    make_trainer(max_epochs=6, callbacks=[_temperature(decay=0.8)]).fit(
        second, make_loader(n=8), ckpt_path=str(tmp_path / "epoch3.ckpt")
    )
    assert second.seen[0][:2] == (3, pytest.approx(2.0 * 0.8**3))
    assert first.seen + second.seen == full.seen
    expected = [_temperature(decay=0.8).value_at(e) for e in range(6)]  # the float32 buffer rounds them
    assert [tau for _, tau, _ in full.seen[::2]] == pytest.approx(expected)


def test_bad_decay_or_unit_names_the_config_key() -> None:
    with pytest.raises(
        ValueError, match=r"callbacks.<name>.decay=1.05 does not move start=2.0 towards end=0.3"
    ):
        _temperature(decay=1.05)
    with pytest.raises(ValueError, match=r"callbacks.<name>.decay > 0, got None"):
        _temperature(decay=None)
    with pytest.raises(ValueError, match=r"callbacks.<name>.total_steps is not used by kind 'geometric'"):
        _temperature(total_steps=10)
    with pytest.raises(ValueError, match=r"kind 'linear' needs callbacks.<name>.total_steps"):
        ScalarAnnealing("temperature", 1.0, 0.1)
    with pytest.raises(ValueError, match=r"callbacks.<name>.unit must be 'step' or 'epoch'"):
        _temperature(unit="batch")
