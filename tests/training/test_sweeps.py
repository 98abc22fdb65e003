"""Hydra multirun and the Optuna sweeper: one directory per job and one summary table at the end.

Sweeps survive: a failed job is recorded (summary.json, multirun_summary.csv, a failed Optuna trial)
and the sweep goes on; re-running the same command skips finished jobs and continues a killed
sweeper's Optuna study from the storage in the sweep directory (training/sweep.py).
"""

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import optuna
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import Callback

from tests.helpers import REPO, TINY, cli_env, read_summary, run_main
from training.run_state import Run

TINY_RUN = ["experiment=cnn_digits", *TINY, "model.lr_schedule=null", "test_after_fit=false"]
FAST_RUN = ["experiment=cnn_digits", "debug=fdr", "callbacks.model_summary=null"]
OPTUNA = ["hparams_search=cnn_optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2"]


class FailFirstJob(Callback):
    """Test-only: the first job that starts training (no `marker` file yet) fails as if out of memory."""

    def __init__(self, marker: str) -> None:
        self.marker = Path(marker)

    def on_train_start(self, *_: object) -> None:
        if not self.marker.exists():
            self.marker.touch()
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 20.00 GiB (injected by the test)"
            )


def _sweep_dir(root):
    (sweep,) = (root / "logs" / "cnn_digits" / "multiruns").iterdir()  # one sweep, however often it ran
    return sweep


def _sweep_table(root):
    return list(csv.DictReader((_sweep_dir(root) / "multirun_summary.csv").open()))


def test_multirun_two_jobs_and_summary_table(tmp_path):
    run_main(tmp_path, "--multirun", *TINY_RUN, "model.optimizer.lr=0.001,0.01")
    rows = _sweep_table(tmp_path)
    assert [row["job"] for row in rows] == ["0", "1"]
    assert all(row["status"] == "finished" and float(row["val/acc"]) >= 0 for row in rows)
    assert "model.optimizer.lr=0.001" in rows[0]["overrides"]


def test_failed_job_is_recorded_the_sweep_goes_on_and_a_rerun_skips_finished_jobs(tmp_path):
    # ~15 s: two 2-job sweeps of one batch each (the second trains nothing).
    command = ["--multirun", *FAST_RUN, "trainer.min_epochs=many,1"]
    run_main(tmp_path, *command)  # exit status 0: one job failed, the other ran after it
    failed, finished = _sweep_table(tmp_path)
    assert failed["status"] == "failed" and "trainer.min_epochs" in failed["error"]
    assert finished["status"] == "finished" and finished["error"] == "" and float(finished["test/acc"]) >= 0
    failed_summary = read_summary(_sweep_dir(tmp_path) / "0")
    assert failed_summary["status"] == "failed" and "trainer.min_epochs" in failed_summary["error"]
    done = read_summary(_sweep_dir(tmp_path) / "1")

    again = run_main(tmp_path, *command)  # the same command: the same sweep directory
    assert "Skipping job 1: its run already finished" in again.stdout + again.stderr
    assert read_summary(_sweep_dir(tmp_path) / "1") == done  # not retrained
    assert [row["status"] for row in _sweep_table(tmp_path)] == ["failed", "finished"]


def test_a_sweep_whose_jobs_all_failed_exits_1_with_its_table(tmp_path):
    # ~6 s: both jobs stop at their config check.
    result = run_main(tmp_path, "--multirun", *FAST_RUN, "trainer.min_epochs=many,-5", check=False)
    assert result.returncode == 1 and "Every job of the sweep failed" in result.stdout + result.stderr
    assert [row["status"] for row in _sweep_table(tmp_path)] == ["failed", "failed"]


def test_single_run_user_error_still_exits_2_with_the_paragraph(tmp_path):
    # ~6 s. A mistake found while running (no CIFAR-10 files offline), not by the config check before it.
    overrides = ["experiment=cifar10_resnet20", "debug=fdr", "callbacks.model_summary=null", "run_name=bad"]
    result = run_main(tmp_path, *overrides, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "data.download=true" in output and "Traceback" not in output
    summary = read_summary(tmp_path / "logs" / "cifar10_resnet20" / "runs" / "bad")
    assert summary["status"] == "failed" and "data.download=true" in summary["error"]


def test_record_failure_changes_only_runs_of_this_launch_or_sweep_jobs(tmp_path):
    # < 1 s. A launch refused for an earlier run's directory must not mark that run failed.
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "summary.json").write_text(json.dumps({"status": "finished"}))
    Run.new_launch()
    Run(earlier).record_failure("refused")
    assert read_summary(earlier) == {"status": "finished"}
    Run(earlier).record_failure("a sweep job's error", sweep_job=True)
    assert (
        read_summary(earlier)["status"] == "failed"
        and read_summary(earlier)["error"] == "a sweep job's error"
    )

    mine = tmp_path / "mine"
    run = Run(mine)
    run.start(OmegaConf.create({"name": "cnn_digits", "task": "fit"}))
    run.update(status="running")
    Run(mine).record_failure("OutOfMemoryError: ...")
    assert read_summary(mine)["status"] == "failed" and read_summary(mine)["experiment"] == "cnn_digits"
    Run.new_launch()  # the next launch in this process did not write it
    Run(mine).record_failure("refused")
    assert read_summary(mine)["error"] == "OutOfMemoryError: ..."


def test_optuna_failed_trial_is_recorded_and_the_search_goes_on(tmp_path):
    # ~15 s: 2 trials; the first runs out of memory (injected), the second trains.
    inject = [
        "+callbacks.fail._target_=tests.training.test_sweeps.FailFirstJob",
        f"+callbacks.fail.marker={tmp_path / 'failed_once'}",
    ]
    run_main(tmp_path, *TINY_RUN, *OPTUNA, *inject)
    rows = _sweep_table(tmp_path)
    assert len(rows) == 2 and len({row["overrides"] for row in rows}) == 2
    assert rows[0]["status"] == "failed" and "OutOfMemoryError" in rows[0]["error"]
    assert rows[1]["status"] == "finished" and float(rows[1]["val/acc"]) >= 0
    study = optuna.load_study(study_name="cnn_digits", storage=f"sqlite:///{_sweep_dir(tmp_path)}/optuna.db")
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    assert study.best_value == float(rows[1]["val/acc"])


def test_optuna_study_continues_after_the_sweeper_is_killed(tmp_path):
    # ~35 s: 3 trials of 12 slowed steps; the sweeper is SIGKILLed inside trial 1, then run again.
    command = [
        sys.executable,
        "-m",
        "training.run",
        *TINY_RUN,
        "hparams_search=cnn_optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.n_startup_trials=3",
        "callbacks.latest_checkpoint.every_n_train_steps=3",
        "+callbacks.throttle._target_=tests.throttle.Throttle",
        "+callbacks.throttle.seconds_per_batch=0.2",
    ]
    first = subprocess.Popen(
        command, cwd=REPO, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    sweeps = tmp_path / "logs" / "cnn_digits" / "multiruns"
    deadline = time.time() + 300
    while not list(sweeps.glob("*/1/checkpoints/step00000003.ckpt")):
        assert first.poll() is None, first.stdout.read()[-3000:]
        assert time.time() < deadline, "trial 1 wrote no checkpoint"
        time.sleep(0.05)
    first.kill()
    first.wait()
    sweep = _sweep_dir(tmp_path)
    assert read_summary(sweep / "0")["status"] == "finished"
    assert read_summary(sweep / "1")["status"] == "running"
    trial_0 = read_summary(sweep / "0")

    run_main(tmp_path, *command[3:])  # the same command
    assert _sweep_dir(tmp_path) == sweep
    study = optuna.load_study(study_name="cnn_digits", storage=f"sqlite:///{sweep}/optuna.db")
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]  # the killed trial 1, queued again as 2
    assert study.trials[2].params == study.trials[1].params
    rows = _sweep_table(tmp_path)
    assert [(row["job"], row["status"]) for row in rows] == [
        ("0", "finished"),
        ("1", "finished"),
        ("2", "finished"),
    ]
    assert read_summary(sweep / "0") == trial_0  # not retrained
    resumed = read_summary(sweep / "1")
    assert resumed["attempts"] == 2 and resumed["resumed_from"].endswith(".ckpt")
    assert resumed["global_step"] == 12
    assert all(
        f"{key}={value}" in rows[1]["overrides"].split() for key, value in study.trials[2].params.items()
    )
