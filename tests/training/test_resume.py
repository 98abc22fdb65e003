"""Resume: a run killed (SIGKILL) or preempted (SIGTERM) and resumed ends exactly like an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, cli_env, read_summary, run_cli, run_main
from training.run_state import Run

# Deterministic CPU config; checkpoints every 7 steps so kills land mid-epoch (20 steps/epoch).
DETERMINISTIC = [
    "experiment=cnn_digits",
    "trainer.max_epochs=3",
    "trainer.deterministic=true",
    "trainer.enable_progress_bar=false",
    "callbacks.latest_checkpoint.every_n_train_steps=7",
    "callbacks.model_summary=null",
]
THROTTLE = [
    "+callbacks.throttle._target_=tests.throttle.Throttle",
    "+callbacks.throttle.seconds_per_batch=0.1",
]
COMPARED = ("test/acc", "test/loss", "val/acc", "val/loss")


def _run_dir(root: Path, name: str) -> Path:
    return root / "logs" / "cnn_digits" / "runs" / name


def _start(root: Path, name: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "training.run", *DETERMINISTIC, *THROTTLE, f"run_name={name}"]
    return subprocess.Popen(
        command, cwd=REPO, env=cli_env(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, (
            f"run ended before {path.name} appeared:\n{process.stdout.read()[-3000:]}"
        )
        assert time.time() < deadline, f"{path} did not appear in {timeout}s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("uninterrupted")
    run_main(root, *DETERMINISTIC, "run_name=ref")
    summary = read_summary(_run_dir(root, "ref"))
    assert summary["status"] == "finished"
    return summary["metrics"]


def _metrics_equal(summary: dict, reference: dict) -> None:
    assert summary["status"] == "finished"
    for key in COMPARED:
        assert summary["metrics"][key] == reference[key], key


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, uninterrupted):
    process = _start(tmp_path, "killed")
    checkpoints = _run_dir(tmp_path, "killed") / "checkpoints"
    _wait_for(checkpoints / "step00000028.ckpt", process)  # mid-epoch 2
    process.kill()
    process.wait()
    assert read_summary(_run_dir(tmp_path, "killed"))["status"] == "running"

    result = run_cli(tmp_path, *DETERMINISTIC, "resume=auto")
    summary = read_summary(_run_dir(tmp_path, "killed"))
    assert summary["resumed_from"].endswith(".ckpt")
    assert summary["attempts"] == 2
    assert "resuming from a checkpoint that ended before the epoch ended" not in result.stdout + result.stderr
    _metrics_equal(summary, uninterrupted)


def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path, uninterrupted):
    process = _start(tmp_path, "corrupt")
    checkpoints = _run_dir(tmp_path, "corrupt") / "checkpoints"
    _wait_for(checkpoints / "step00000035.ckpt", process)
    process.kill()
    process.wait()
    step_files = sorted(checkpoints.glob("step*.ckpt"))
    newest = step_files[-1]
    for path in (newest, checkpoints / "last.ckpt"):  # truncate: a half-written file from another tool
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    time.sleep(0.01)

    result = run_cli(tmp_path, *DETERMINISTIC, "run_name=corrupt", "resume=auto")
    summary = read_summary(_run_dir(tmp_path, "corrupt"))
    assert "Skipping unreadable or incomplete checkpoint" in result.stdout + result.stderr
    assert Path(summary["resumed_from"]).name not in (newest.name, "last.ckpt")
    _metrics_equal(summary, uninterrupted)


def test_sigterm_saves_a_checkpoint_and_resume_finishes_identically(tmp_path, uninterrupted):
    process = _start(tmp_path, "preempted")
    run_dir = _run_dir(tmp_path, "preempted")
    _wait_for(run_dir / "checkpoints" / "step00000021.ckpt", process)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output[-3000:]
    summary = read_summary(run_dir)
    assert summary["status"] == "preempted"
    assert "test/acc" not in summary.get("metrics", {})  # no test phase after a preemption

    run_main(tmp_path, *DETERMINISTIC, "resume=auto")
    _metrics_equal(read_summary(run_dir), uninterrupted)


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGINT])
def test_sigusr1_and_ctrl_c_checkpoint_and_stop_cleanly(tmp_path, signum):
    process = _start(tmp_path, "signalled")
    run_dir = _run_dir(tmp_path, "signalled")
    _wait_for(run_dir / "checkpoints" / "step00000007.ckpt", process)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output[-3000:]
    summary = read_summary(run_dir)
    assert summary["status"] == "preempted"
    assert f"preempted by {signal.Signals(signum).name}" in output
    assert summary["global_step"] < 60  # stopped long before the end (3 epochs x 20 steps)
    assert (run_dir / "checkpoints" / f"step{summary['global_step']:08d}.ckpt").exists()


def test_resume_auto_picks_the_newest_unfinished_run_that_has_a_checkpoint(tmp_path):
    """A newer attempt that failed before its first checkpoint (a bad value) is not the run to continue."""
    runs = tmp_path / "runs"
    for age, (name, status, checkpoint) in enumerate(
        [("cut_short", "running", True), ("refused", "failed", False), ("done", "finished", True)]
    ):
        run_dir = runs / name
        (run_dir / "checkpoints").mkdir(parents=True)
        (run_dir / "summary.json").write_text(json.dumps({"status": status}))
        if checkpoint:
            (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
        os.utime(run_dir, (age, age))
    assert Run.newest_unfinished(runs).dir == runs / "cut_short"
