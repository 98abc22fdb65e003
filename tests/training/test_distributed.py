"""Real DDP on CPU: Lightning's 2-process launcher and torchrun each write ONE run directory."""

import sys

import pytest

from tests.helpers import TINY, read_summary, run_cli, run_dirs

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo multi-process tests run on Linux CI")
RUN = ["experiment=cnn_digits", *TINY, "model.lr_schedule=null"]


def _one_finished_run(root):
    (run_dir,) = run_dirs(root, "cnn_digits")
    summary = read_summary(run_dir)
    assert summary["status"] == "finished" and summary["world_size"] == 2
    assert (run_dir / "heartbeat" / "rank_0.alive").exists() and (
        run_dir / "heartbeat" / "rank_1.alive"
    ).exists()
    return run_dir, summary


def test_ddp_cpu_trains_two_processes_and_logs_once(tmp_path):
    run_cli(tmp_path, *RUN, "trainer=ddp_cpu")
    run_dir, summary = _one_finished_run(tmp_path)
    header, *rows = (run_dir / "metrics.csv").read_text().splitlines()
    steps = [row.split(",")[header.split(",").index("step")] for row in rows if row]
    assert len(steps) == len(set(zip(steps, rows, strict=True)))  # no duplicated rows from rank 1
    assert not list(run_dir.parent.parent.glob("runs/*/.hydra/config.yaml"))[1:]


def test_torchrun_two_processes_one_run_directory(tmp_path):
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29531",
        "-m",
    ]
    run_cli(tmp_path, *RUN, "trainer=torchrun", launcher=launcher)
    _one_finished_run(tmp_path)
