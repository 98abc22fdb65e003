"""Heartbeat: status lines every N steps, perf metrics, data-wait share, liveness files and stall reports."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger

from callbacks.heartbeat import Heartbeat
from callbacks.step_readings import batch_size_of, read_fields
from datamodules.loading import ResumableLoader
from tests.callbacks.conftest import (
    RandomRegression,
    TinyRegressor,
    ValidatedRegressor,
    make_loader,
    read_metrics_csv,
)

LINE = re.compile(
    r"heartbeat step=(\d+) loss=(\S+) ms/batch=(\S+) samples/s=(\S+) data-wait=(\S+)% peak_mem=(\S+)MB"
)


def _lines(caplog: pytest.LogCaptureFixture) -> list[re.Match]:
    return [
        m for r in caplog.records if r.name == "callbacks.heartbeat" and (m := LINE.match(r.getMessage()))
    ]


def test_status_line_every_n_steps_with_fields_and_metrics(make_trainer, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="callbacks.heartbeat")
    trainer = make_trainer(max_epochs=2, logger=CSVLogger(tmp_path), callbacks=[Heartbeat(every_n_steps=5)])
    trainer.fit(TinyRegressor(), make_loader(n=32, batch_size=4))  # 16 steps

    lines = _lines(caplog)
    assert [int(m.group(1)) for m in lines] == [5, 10, 15]
    rows = read_metrics_csv(trainer)
    perf_rows = [r for r in rows if r.get("perf/ms_per_batch")]
    assert [int(r["step"]) for r in perf_rows] == [4, 9, 14]  # Lightning's x-axis: batches before this one
    loss_at = {int(r["step"]): float(r["train/loss_step"]) for r in rows if r.get("train/loss_step")}
    for line, row in zip(lines, perf_rows, strict=True):
        step = int(row["step"])
        assert float(line.group(2)) == pytest.approx(loss_at[step], rel=1e-3)  # the loss of that step
        assert float(line.group(3)) > 0 and float(line.group(4)) > 0 and float(line.group(6)) > 0
        assert 0.0 <= float(line.group(5)) <= 100.0
        # the line rounds to 0.1 (a slow first interval on a loaded machine can be < 50 samples/s)
        assert float(row["perf/samples_per_s"]) == pytest.approx(float(line.group(4)), rel=1e-3, abs=0.05)
        assert float(row["perf/peak_mem_mb"]) > 0
        assert 0.0 <= float(row["perf/data_wait_share"]) <= 1.0


def test_data_wait_share_is_high_when_loading_is_slow(make_trainer) -> None:
    shares = {}
    for sleep_s in (0.0, 0.01):
        heartbeat = Heartbeat(every_n_steps=4, watchdog=False)
        make_trainer(callbacks=[heartbeat]).fit(
            TinyRegressor(), make_loader(n=32, batch_size=4, sleep_s=sleep_s)
        )
        shares[sleep_s] = heartbeat.last_report["data_wait_share"]
        if sleep_s:  # a batch takes >= 4 x 10 ms to load
            assert heartbeat.last_report["ms_per_batch"] >= 40.0
    assert shares[0.01] > 0.7
    assert shares[0.01] > shares[0.0]


class _SlowBatchEnd(pl.Callback):
    """Loop work between batches that is not data loading: 20 ms in every on_train_batch_end."""

    def on_train_batch_end(self, *args: object) -> None:
        time.sleep(0.02)


def test_data_wait_counts_the_loaders_fetch_not_the_loops_other_work(make_trainer) -> None:
    """With a loader that counts its `fetch_seconds` (every VisionCore loader), hooks that run between
    batches are not data wait; a plain DataLoader falls back to the time between batches."""
    shares = {}
    for kind in ("resumable", "plain"):
        heartbeat = Heartbeat(every_n_steps=4, watchdog=False)
        loader = (
            ResumableLoader(RandomRegression(n=32), batch_size=4)
            if kind == "resumable"
            else make_loader(n=32, batch_size=4)
        )
        make_trainer(callbacks=[heartbeat, _SlowBatchEnd()]).fit(TinyRegressor(), loader)
        shares[kind] = heartbeat.last_report["data_wait_share"]
    assert shares["plain"] > 0.5  # the 20 ms of hooks between batches
    assert shares["resumable"] < 0.1

    heartbeat = Heartbeat(every_n_steps=4, watchdog=False)  # a slow loader still shows as waiting
    slow = ResumableLoader(RandomRegression(n=32, sleep_s=0.01), batch_size=4)
    make_trainer(callbacks=[heartbeat]).fit(TinyRegressor(), slow)
    assert heartbeat.last_report["data_wait_share"] > 0.7


def test_liveness_file_per_rank(make_trainer, tmp_path) -> None:
    (tmp_path / "heartbeat").mkdir()
    (tmp_path / "heartbeat" / "rank_5.alive").write_text("{}")  # left by an earlier, wider run
    make_trainer(callbacks=[Heartbeat(every_n_steps=3, watchdog=False)]).fit(TinyRegressor(), make_loader())
    beat = json.loads((tmp_path / "heartbeat" / "rank_0.alive").read_text())
    assert beat["rank"] == 0 and beat["step"] == 6 and beat["pid"] == os.getpid()
    assert time.time() - beat["time"] < 60
    assert sorted(p.name for p in (tmp_path / "heartbeat").iterdir()) == ["rank_0.alive"]

    custom = tmp_path / "beats"
    make_trainer(callbacks=[Heartbeat(every_n_steps=3, liveness_dir=custom, watchdog=False)]).fit(
        TinyRegressor(), make_loader()
    )
    assert (custom / "rank_0.alive").exists()


class _FakeRanks(pl.Callback):
    """Writes a stale liveness file for rank 1 and a fresh one for rank 2 once training runs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            stale = self.directory / "rank_1.alive"
            stale.write_text(json.dumps({"rank": 1, "step": 2}))
            old = time.time() - 1000
            os.utime(stale, (old, old))
            (self.directory / "rank_2.alive").write_text(json.dumps({"rank": 2, "step": 3}))


def test_stale_rank_is_reported(make_trainer, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="callbacks.heartbeat")
    heartbeat = Heartbeat(every_n_steps=2, stall_seconds=300, watchdog=False)
    trainer = make_trainer(callbacks=[heartbeat, _FakeRanks(tmp_path / "heartbeat")])
    trainer.fit(TinyRegressor(), make_loader())  # 8 steps: 4 checks

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per stall, not at every check
    assert "rank 1 has not beaten for" in warnings[0] and "last at step 2" in warnings[0]
    assert heartbeat.stale_ranks == {1}


def test_watchdog_reports_a_stalled_main_loop(make_trainer, caplog) -> None:
    caplog.set_level(logging.INFO, logger="callbacks.heartbeat")
    heartbeat = Heartbeat(every_n_steps=100, stall_seconds=0.2)
    make_trainer(callbacks=[heartbeat]).fit(TinyRegressor(), make_loader(n=4, batch_size=2, sleep_s=0.25))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("rank 0 has not beaten" in w for w in warnings)
    assert heartbeat._thread is None  # stopped at train end


def test_validation_time_is_excluded(make_trainer) -> None:
    heartbeat = Heartbeat(every_n_steps=8, stall_seconds=0.2, watchdog=False)
    slow_val = make_loader(n=8, batch_size=4, sleep_s=0.03)  # each validation run takes >= 240 ms
    trainer = make_trainer(val_check_interval=2, num_sanity_val_steps=2, callbacks=[heartbeat])
    trainer.fit(ValidatedRegressor(), make_loader(n=32), slow_val)
    assert heartbeat.last_report["step"] == 8
    assert (
        heartbeat.last_report["ms_per_batch"] < 50.0
    )  # 3 validations (>= 720 ms) in the interval, not counted
    assert heartbeat.last_report["data_wait_share"] < 0.9


def test_batch_size_of_nested_batches() -> None:
    import torch

    assert batch_size_of({"meta": "x", "images": [torch.zeros(3, 2)]}) == 3
    # Grouped batches (v1: {session: {key: tensor}}) count every group's samples.
    grouped = {"a": {"stim": torch.zeros(4, 2), "robs": torch.zeros(4)}, "b": {"stim": torch.zeros(6, 2)}}
    assert batch_size_of(grouped) == 10
    assert batch_size_of((torch.tensor(1.0), torch.zeros(5))) == 5
    assert batch_size_of("no tensors") is None


class _GanLike(TinyRegressor):
    """Logs metrics with known values: G_Loss = global step (step and epoch), D_Acc = step / 100 (step only)."""

    def training_step(self, batch, batch_idx):
        self.log("train/g_loss", float(self.global_step), on_step=True, on_epoch=True)
        self.log("train/d_acc", self.global_step / 100, on_step=True, on_epoch=False)
        return super().training_step(batch, batch_idx)


FIELDS = {"G_Loss": "train/g_loss", "D_Acc": "train/d_acc", "Reward": "train/reward"}
FIELD_LINE = re.compile(
    r"heartbeat step=(\d+) G_Loss=(\S+) D_Acc=(\S+) Reward=(\S+) \| "
    r"ms/batch=(\S+) samples/s=(\S+) data-wait=(\S+)% peak_mem=(\S+)MB$"
)


def test_fields_give_the_seeds_status_line(make_trainer, caplog, count_field_reads) -> None:
    import callbacks.heartbeat as heartbeat_module

    reads = count_field_reads(heartbeat_module)
    caplog.set_level(logging.INFO, logger="callbacks.heartbeat")
    heartbeat = Heartbeat(every_n_steps=3, watchdog=False, fields=FIELDS)
    make_trainer(callbacks=[heartbeat]).fit(_GanLike(), make_loader(n=32, batch_size=4))  # 8 steps

    messages = [r.getMessage() for r in caplog.records if r.name == "callbacks.heartbeat"]
    lines = [FIELD_LINE.match(m) for m in messages]
    assert all(lines) and len(lines) == 2, messages
    assert reads == ["_step", "_step"]  # one read per report, none per batch
    for line, step in zip(lines, (3, 6), strict=True):  # reported after step `step - 1` ran
        assert int(line.group(1)) == step
        assert float(line.group(2)) == step - 1  # `train/g_loss_step`
        assert float(line.group(3)) == pytest.approx((step - 1) / 100)
        assert line.group(4) == "nan"  # never logged
        assert float(line.group(5)) > 0 and float(line.group(6)) > 0 and float(line.group(8)) > 0
    report = heartbeat.last_report
    assert list(report) == [
        "step", "G_Loss", "D_Acc", "Reward", "ms_per_batch", "samples_per_s", "data_wait_share", "peak_mem_mb"
    ]  # fmt: skip
    assert (report["step"], report["G_Loss"]) == (6.0, 5.0) and report["D_Acc"] == pytest.approx(0.05)


def test_read_fields_prefers_the_suffixed_key_and_rejects_bad_labels() -> None:
    import torch

    metrics = {
        "a_step": torch.tensor(1.0),
        "a": torch.tensor(2.0),
        "b": torch.tensor(3.0),
        "v": torch.ones(2),
    }
    fields = {"A": "a", "B": "b", "V": "v", "C": "c"}
    values = read_fields(metrics, fields, "_step")
    assert list(values) == ["A", "B", "V", "C"] and values["A"] == 1.0 and values["B"] == 3.0
    assert math.isnan(values["V"]) and math.isnan(values["C"])  # not a scalar / not logged
    assert read_fields(metrics, {"A": "a"}, "_epoch") == {"A": 2.0}
    with pytest.raises(ValueError, match=r"callbacks.heartbeat.fields\): fields label 'G Loss' must be"):
        Heartbeat(fields={"G Loss": "train/g_loss"})
    with pytest.raises(ValueError, match="label 'step' is taken"):
        Heartbeat(fields={"step": "train/g_loss"})
    with pytest.raises(ValueError, match="fields.G must be a metric key"):
        Heartbeat(fields={"G": ""})
