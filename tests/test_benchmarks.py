"""benchmarks/: the loop-overhead, throughput, DDP and efficiency scripts measure what they say."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import compose_config, load_script


def test_loop_overhead_rotates_the_loop_order_between_repeats():
    loop_overhead = load_script("benchmarks/loop_overhead.py")
    orders = loop_overhead.rotations(["a", "b", "c"], repeats=4)
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_loop_overhead_times_steps_after_the_warmup_only():
    loop_overhead = load_script("benchmarks/loop_overhead.py")
    ends = [5.0, 6.0, 6.2, 6.4, 6.6]  # step ends: two slow warm-up steps, then 0.2 s per step
    assert loop_overhead.steady_ms(ends, warmup=2) == pytest.approx(200.0)


def test_throughput_reads_the_heartbeat_rows(tmp_path):
    throughput = load_script("benchmarks/throughput.py")
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(
        "epoch,perf/data_wait_share,perf/ms_per_batch,perf/samples_per_s,step,train/loss_step\n"
        "0,0.5,900.0,142.2,0,\n"
        ",,,,0,2.3\n"
        "0,0.1,800.0,160.0,1,\n"
    )
    rows = throughput.heartbeat_rows(metrics)
    assert [row["perf/ms_per_batch"] for row in rows] == [900.0, 800.0]
    assert rows[1]["perf/data_wait_share"] == pytest.approx(0.1)


def test_throughput_stands_in_procedural_data_shaped_like_the_experiment(tmp_path):
    throughput = load_script("benchmarks/throughput.py")
    cfg = compose_config(["experiment=cifar10_resnet20"])
    overrides, source = throughput.data_overrides(cfg, tmp_path / "no-data", batches=5)
    assert source == "procedural 3x32x32"
    assert "data=procedural" in overrides
    assert "data.procedural.num_classes=10" in overrides and "data.batch_size=128" in overrides
    samples = int(next(o for o in overrides if o.startswith("data.procedural.num_samples=")).split("=")[1])
    assert samples * 0.8 * 0.9 >= 5 * 128  # enough for the requested batches after the hold-outs


def test_ddp_benchmark_gives_each_process_half_the_global_batch(tmp_path, monkeypatch):
    ddp = load_script("benchmarks/ddp.py")
    commands = []

    def fake_run(command, **_):
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(ddp.subprocess, "run", fake_run)
    monkeypatch.setattr(
        ddp, "read_summary", lambda _: {"status": "finished", "performance": {"samples_per_s": 7.0}}
    )
    for form, processes in ddp.FORMS.values():
        assert ddp.fit_throughput("cnn_digits", form, processes, 5, tmp_path) == 7.0
    batches = [next(a for a in command if a.startswith("data.batch_size=")) for command in commands]
    assert batches == ["data.batch_size=32", "data.batch_size=64"]  # cnn_digits: 64 per step either way
    assert all("trainer.max_steps=5" in command for command in commands)


def test_efficiency_measures_a_real_training_step(tmp_path, capsys):
    """The efficiency table's core on the smallest experiment: 1 warm-up, 2 timed, 1 FLOP-counted and
    1 profiled step of cnn_digits (a few seconds)."""
    import torch

    efficiency = load_script("benchmarks/efficiency.py")
    args = efficiency.parse_args(
        ["--steps", "2", "--warmup", "1", "--profile-steps", "1", "--matmul-size", "512"]
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the script's default
    try:
        row = efficiency.measure("cnn_digits", args, tmp_path)
        missing = efficiency.measure("no_such_experiment", args, tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert row.error is None, row.error
    assert row.steps == 2 and row.data == "digits" and row.step.startswith("auto")
    assert row.flops > 0 and row.step_ms > 0 and row.peak > 0
    assert 0 < row.mfu < 1.5
    assert 0 <= row.data_wait <= 1
    assert len(row.top_ops) == 3 and all(0 < share <= 1 for _, share in row.top_ops)
    assert 0 < row.in_ops <= 1
    if row.mfu >= efficiency.LIMIT_BELOW:
        assert row.limit == "-"
    else:
        assert row.limit in (row.top_ops[0][0], f"host overhead ({1 - row.in_ops:.0%} outside ops)")
    assert missing.error and missing.error.startswith("config:")
    efficiency.print_table([row, missing])
    table = capsys.readouterr().out
    assert "cnn_digits" in table and "MFU" in table and "no_such_experiment  config:" in table
