"""EpochHeartbeat: epoch lines and the final performance summary, with known batch times."""

from __future__ import annotations

import logging
import math
import re

import pytest

from callbacks.annealing import ScalarAnnealing
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


class _GanLike(TinyRegressor):
    """Known epoch values: G_Loss = mean global step of the epoch, D_Acc = 0.5 + epoch / 10."""

    def training_step(self, batch, batch_idx):
        self.log(
            "train/g_loss", float(self.global_step), on_step=True, on_epoch=True
        )  # -> train/g_loss_epoch
        self.log("train/d_acc", 0.5 + self.current_epoch / 10, on_step=False, on_epoch=True)  # -> train/d_acc
        return super().training_step(batch, batch_idx)


FIELDS = {"G_Loss": "train/g_loss", "D_Acc": "train/d_acc", "Temperature": "anneal/temperature", "Gone": "x"}


def test_fields_in_epoch_lines_final_line_and_performance(make_trainer, caplog, count_field_reads) -> None:
    import callbacks.epoch_heartbeat as epoch_heartbeat_module

    reads = count_field_reads(epoch_heartbeat_module)
    caplog.set_level(logging.INFO, logger="callbacks.epoch_heartbeat")
    temperature = ScalarAnnealing(
        "temperature", 2.0, 0.3, kind="geometric", decay=0.5, unit="epoch", log_name="temperature"
    )
    epoch_heartbeat = EpochHeartbeat(fields=FIELDS)
    make_trainer(max_epochs=2, callbacks=[temperature, epoch_heartbeat]).fit(_GanLike(), make_loader(n=16))

    assert reads == ["_epoch", "_epoch"]  # one read per epoch, none per batch
    messages = [r.getMessage() for r in caplog.records if r.name == "callbacks.epoch_heartbeat"]
    assert len(messages) == 3
    line = re.compile(
        r"epoch (\d) done: time=\S+s \(train \S+s\) G_Loss=(\S+) D_Acc=(\S+) Temperature=(\S+) Gone=nan"
    )
    epochs = [line.match(m) for m in messages[:2]]
    assert [(m.group(1), m.group(2), m.group(3), m.group(4)) for m in epochs] == [
        ("0", "1.5", "0.5", "2"),  # steps 0..3; temperature 2.0 * 0.5**0
        ("1", "5.5", "0.6", "1"),  # steps 4..7; 2.0 * 0.5**1
    ]
    assert "train/loss=" not in messages[0] and "samples/s=" in messages[0]
    assert messages[2].startswith("performance: ") and "2 epochs, 8 steps, 8 batches" in messages[2]
    assert messages[2].endswith("samples/s, final: G_Loss=5.5 D_Acc=0.6 Temperature=1 Gone=nan")
    p = epoch_heartbeat.performance
    assert (p["final/G_Loss"], p["final/Temperature"]) == (5.5, 1.0)
    assert p["final/D_Acc"] == pytest.approx(0.6) and math.isnan(p["final/Gone"])
    assert list(p)[-4:] == ["final/G_Loss", "final/D_Acc", "final/Temperature", "final/Gone"]


def test_without_fields_performance_has_no_final_values(make_trainer) -> None:
    epoch_heartbeat = EpochHeartbeat()
    make_trainer(callbacks=[epoch_heartbeat]).fit(TinyRegressor(), make_loader(n=8))
    assert not [key for key in epoch_heartbeat.performance if key.startswith("final/")]
    with pytest.raises(ValueError, match=r"callbacks.epoch_heartbeat.fields\): fields label 'a=b'"):
        EpochHeartbeat(fields={"a=b": "train/loss"})
