"""EpochHeartbeat: epoch lines and the final performance summary, with known batch times."""

from __future__ import annotations

import logging
import re

import pytest

from callbacks.epoch_heartbeat import EpochHeartbeat
from tests.callbacks.conftest import TinyRegressor, ValidatedRegressor, make_loader


def test_performance_summary_numbers(make_trainer) -> None:
    epoch_heartbeat = EpochHeartbeat()
    make_trainer(max_epochs=2, callbacks=[epoch_heartbeat]).fit(
        TinyRegressor(),
        make_loader(n=16, batch_size=4, sleep_s=0.005),  # >= 20 ms to load each batch
    )
    p = epoch_heartbeat.performance
    assert (p["epochs"], p["steps"], p["batches"]) == (2, 8, 8)
    assert p["batch_time_ms_min"] >= 20.0
    assert p["batch_time_ms_min"] <= p["batch_time_ms_avg"] <= p["batch_time_ms_max"]
    assert p["total_time_s"] >= p["train_time_s"] >= 8 * 0.020
    assert p["samples_per_s"] <= 4 / 0.020  # 4 samples per >= 20 ms batch
    assert p["samples_per_s"] == pytest.approx(32 / p["train_time_s"])


def test_epoch_lines_and_final_summary(make_trainer, caplog) -> None:
    caplog.set_level(logging.INFO, logger="callbacks.epoch_heartbeat")
    trainer = make_trainer(max_epochs=2, callbacks=[EpochHeartbeat()])
    trainer.fit(ValidatedRegressor(), make_loader(n=16), make_loader(n=8, seed=1))
    messages = [r.getMessage() for r in caplog.records if r.name == "callbacks.epoch_heartbeat"]
    epoch_lines = [m for m in messages if m.startswith("epoch ")]
    assert [int(m.split()[1]) for m in epoch_lines] == [0, 1]
    loss = float(re.search(r"train/loss=(\S+)", epoch_lines[-1]).group(1))
    assert loss == pytest.approx(float(trainer.callback_metrics["train/loss_epoch"]), rel=1e-3)
    val = float(re.search(r"val/loss=(\S+)", epoch_lines[-1]).group(1))
    assert val == pytest.approx(float(trainer.callback_metrics["val/loss"]), rel=1e-3)
    assert "samples/s=" in epoch_lines[-1]
    assert messages[-1].startswith("performance: ") and "2 epochs, 8 steps" in messages[-1]


def test_validation_time_is_not_batch_time(make_trainer) -> None:
    epoch_heartbeat = EpochHeartbeat()
    slow_val = make_loader(n=8, batch_size=4, sleep_s=0.03)  # each validation run takes >= 240 ms
    make_trainer(val_check_interval=2, callbacks=[epoch_heartbeat]).fit(
        ValidatedRegressor(), make_loader(n=16), slow_val
    )
    p = epoch_heartbeat.performance
    assert p["total_time_s"] - p["train_time_s"] >= 2 * 0.24  # two validations, excluded from train time
    assert p["batch_time_ms_max"] < 200.0
