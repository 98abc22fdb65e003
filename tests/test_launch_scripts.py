"""experiments/: the sweep table printer, the SLURM launcher config and the launch scripts."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.helpers import REPO, cli_env, compose_config, load_script

SCRIPTS = sorted(str(p.relative_to(REPO)) for p in (REPO / "experiments").glob("*.sh")) + [
    "experiments/slurm.sbatch",
    "experiments/slurm_v1.sbatch",
]


# -------------------------------------------------------------------------------- compare_runs.py
def _write_sweep_csv(path: Path) -> Path:
    """A multirun_summary.csv as training.summary.MultirunSummary writes it (one row per job)."""
    rows = [
        {
            "job": "0",
            "overrides": "experiment=cifar10_resnet20 model=resnet20 data=procedural",
            "status": "finished",
            "samples_per_s": "1000.04",
            "wall_time_s": "65.2",
            "params": "272474",
            "train/loss": "0.9",
            "val/acc": "0.61",
            "test/acc": "0.6",
        },
        {
            "job": "1",
            "overrides": "experiment=cifar10_resnet20 model=resnet56 data=procedural",
            "status": "finished",
            "samples_per_s": "400.26",
            "wall_time_s": "130",
            "params": "855770",
            "train/loss": "0.5",
            "val/acc": "0.70",
            "test/acc": "0.72",
        },
        {  # failed: no metrics at all
            "job": "2",
            "overrides": "experiment=cifar10_resnet20 model=densenet40 data=procedural",
            "status": "failed",
            "samples_per_s": "",
            "wall_time_s": "",
            "params": "1059298",
            "train/loss": "",
            "val/acc": "",
            "test/acc": "",
        },
        {  # test_after_fit=false: only val/acc, shown with a star
            "job": "3",
            "overrides": "experiment=cifar10_resnet20 model=resnet18 data=procedural",
            "status": "finished",
            "samples_per_s": "90.5",
            "wall_time_s": "3725",
            "params": "11173962",
            "train/loss": "0.2",
            "val/acc": "0.9",
            "test/acc": "",
        },
    ]
    out = path / "multirun_summary.csv"
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def test_compare_runs_sorts_by_accuracy_with_the_right_numbers(tmp_path):
    compare = load_script("experiments/compare_runs.py")
    rows = compare.load_rows(_write_sweep_csv(tmp_path))
    assert [r.model for r in rows] == ["resnet18", "resnet56", "resnet20", "densenet40"]
    assert [r.score for r in rows] == [0.9, 0.72, 0.6, None]
    assert [r.score_key for r in rows] == ["val/acc", "test/acc", "test/acc", None]
    assert rows[1].params == 855770 and rows[1].samples_per_s == pytest.approx(400.26)
    assert rows[3].status == "failed" and rows[3].samples_per_s is None


def test_compare_runs_ranks_by_another_metric_with_its_val_stand_in(tmp_path):
    compare = load_script("experiments/compare_runs.py")
    rows = compare.load_rows(_write_sweep_csv(tmp_path), metric="train/loss")
    assert [r.score for r in rows] == [0.9, 0.5, 0.2, None]  # higher first; no val/ column: key is train/loss
    assert compare.metric_keys("test/fraction_of_oracle") == (
        "test/fraction_of_oracle",
        "val/fraction_of_oracle",
    )
    assert "train/loss" in compare.format_table(rows, "train/loss").splitlines()[0]


def test_compare_runs_cli_prints_an_aligned_table(tmp_path):
    table = _write_sweep_csv(tmp_path)
    result = subprocess.run(
        [sys.executable, "experiments/compare_runs.py", str(table)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == f"4 runs from {table}"
    header, rule, *body = lines[1:]
    assert header.split() == ["#", "model", "test/acc", "params", "samples/s", "wall", "time", "status"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert [line.split() for line in body[:4]] == [
        ["1", "resnet18", "0.9000*", "11.17M", "90.5", "1h02m", "finished"],
        ["2", "resnet56", "0.7200", "0.86M", "400.3", "2m10s", "finished"],
        ["3", "resnet20", "0.6000", "0.27M", "1000.0", "1m05s", "finished"],
        ["4", "densenet40", "-", "1.06M", "-", "-", "failed"],
    ]
    assert body[4].startswith("* val/acc")
    # aligned: a column starts at the same offset on every line
    assert {line.index("finished") for line in body[:3]} == {header.index("status")}
    assert {line.index("M ") for line in body[:4]} == {header.index("params") + len("params") - 1}


def test_compare_runs_missing_file_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "experiments/compare_runs.py", str(tmp_path / "nope.csv")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "multirun_summary.csv" in result.stderr and "does not exist" in result.stderr


# ---------------------------------------------------------------------------- SLURM launcher config
def test_slurm_launcher_config_composes():
    cfg = compose_config(["hydra/launcher=slurm"])
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.signal_delay_s == 120
    assert launcher.max_num_timeout == 3
    assert launcher.partition is None
    assert launcher.timeout_min > 0 and launcher.gpus_per_node == launcher.tasks_per_node == 1
    assert launcher.cpus_per_task >= 1 and launcher.mem_gb >= 1
    params = OmegaConf.to_container(launcher.additional_parameters, resolve=True)
    assert params == {"signal": "USR1@120", "requeue": True}


def test_slurm_launcher_parameters_are_accepted_by_submitit(tmp_path, monkeypatch):
    """The plugin passes these to submitit, which rejects unknown ones (it only needs `srun` on PATH)."""
    submitit = pytest.importorskip("submitit")
    fake = tmp_path / "bin" / "srun"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")

    launcher = OmegaConf.to_container(compose_config(["hydra/launcher=slurm"]).hydra.launcher, resolve=False)
    launcher.pop("_target_")
    launcher.pop("submitit_folder")
    launcher["name"] = "job"
    launcher["additional_parameters"] = {"signal": "USR1@120", "requeue": True}
    executor = submitit.AutoExecutor(
        cluster="slurm", folder=tmp_path / "submitit", slurm_max_num_timeout=launcher.pop("max_num_timeout")
    )
    base = {"timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes", "name"}
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in launcher.items()})


# --------------------------------------------------------------------------------- launch scripts
@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_valid_executable_bash(script):
    path = REPO / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_slurm_sbatch_requeues_and_resumes():
    text = (REPO / "experiments/slurm.sbatch").read_text()
    for line in ("#SBATCH --signal=USR1@120", "#SBATCH --requeue"):
        assert line in text
    assert "srun" in text and "trainer=torchrun" in text
    assert 'run_name="${SLURM_JOB_NAME' in text and "resume=auto" in text


# ------------------------------------------------------------------------------- real multiruns
@pytest.mark.slow
def test_run_all_models_sweeps_and_prints_one_table(tmp_path):
    env = cli_env(tmp_path, MODELS="small_cnn,resnet20")
    result = subprocess.run(
        [
            "experiments/run_all_models.sh",
            "data=procedural",
            "data.procedural.channels=3",
            "data.procedural.image_size=16",
            "data.procedural.num_classes=10",
            "data.procedural.num_samples=300",
            "data.batch_size=16",
            "debug=limit",
            "test_after_fit=true",
            "callbacks.model_summary=null",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("2 runs from "))
    table_path = Path(lines[start].removeprefix("2 runs from "))
    assert table_path.parent.parent.name == "multiruns" and table_path.is_file()
    header, _, first, second = lines[start + 1 : start + 5]
    assert header.split()[:3] == ["#", "model", "test/acc"]
    assert {first.split()[1], second.split()[1]} == {"small_cnn", "resnet20"}
    accuracies = [float(line.split()[2]) for line in (first, second)]
    assert accuracies == sorted(accuracies, reverse=True)


TINY_DIGITS = [
    "experiment=cnn_digits",
    "trainer.accelerator=cpu",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "callbacks.model_summary=null",
]

FAKE_SRUN = """#!/usr/bin/env bash
# srun stand-in: start the command once per task with SLURM's per-task variables.
set -euo pipefail
while [[ $# -gt 0 && $1 == --* ]]; do shift; done
pids=()
for ((task = 0; task < SLURM_NTASKS; task++)); do
    SLURM_PROCID=$task SLURM_LOCALID=$task SLURM_NODEID=0 "$@" &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo multi-process runs are exercised on Linux")
def test_torchrun_script_runs_two_processes_in_one_run_directory(tmp_path):
    env = cli_env(tmp_path, NPROC="2")
    subprocess.run(
        ["experiments/torchrun.sh", *TINY_DIGITS, "trainer.max_epochs=1"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    (run,) = (tmp_path / "logs" / "cnn_digits" / "runs").iterdir()
    summary = (run / "summary.json").read_text()
    assert '"world_size": 2' in summary and '"status": "finished"' in summary


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo multi-process runs are exercised on Linux")
def test_slurm_sbatch_requeued_job_continues_its_run(tmp_path):
    """Under a stand-in srun (2 tasks): the run directory is the job name; a second attempt resumes it."""
    fake = tmp_path / "bin" / "srun"
    fake.parent.mkdir()
    fake.write_text(FAKE_SRUN)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = cli_env(
        tmp_path,
        PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
        SLURM_JOB_ID="4242",
        SLURM_JOB_NAME="requeue_me",
        SLURM_NTASKS="2",
        SLURM_NTASKS_PER_NODE="2",
        SLURM_NNODES="1",
        SLURM_NODELIST="localhost",
        SLURM_SUBMIT_DIR=str(REPO),
    )
    run = tmp_path / "logs" / "cnn_digits" / "runs" / "requeue_me"
    for epochs, attempt in ((1, 1), (2, 2)):  # the second attempt stands for the requeued job
        subprocess.run(
            ["bash", "experiments/slurm.sbatch", *TINY_DIGITS, f"trainer.max_epochs={epochs}"],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
        summary = json.loads((run / "summary.json").read_text())
        assert summary["attempts"] == attempt and summary["world_size"] == 2
        assert summary["status"] == "finished" and summary["global_step"] == 4 * epochs
    assert summary["resumed_from"].endswith("checkpoints/last.ckpt")
    assert sorted(p.name for p in run.glob("rank*.log")) == ["rank0.log", "rank1.log"]
