"""Hydra multirun and the Optuna sweeper: one directory per job and one summary table at the end."""

import csv

from tests.helpers import TINY, run_cli

TINY_RUN = ["experiment=cnn_digits", *TINY, "model.lr_schedule=null", "test_after_fit=false"]


def _sweep_table(root):
    (table,) = (root / "logs" / "cnn_digits" / "multiruns").glob("*/multirun_summary.csv")
    return list(csv.DictReader(table.open()))


def test_multirun_two_jobs_and_summary_table(tmp_path):
    run_cli(tmp_path, "--multirun", *TINY_RUN, "model.optimizer.lr=0.001,0.01")
    rows = _sweep_table(tmp_path)
    assert [row["job"] for row in rows] == ["0", "1"]
    assert all(row["status"] == "finished" and float(row["val/acc"]) >= 0 for row in rows)
    assert "model.optimizer.lr=0.001" in rows[0]["overrides"]


def test_optuna_two_trials(tmp_path):
    run_cli(
        tmp_path,
        *TINY_RUN,
        "hparams_search=cnn_optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
    )
    rows = _sweep_table(tmp_path)
    assert len(rows) == 2
    assert len({row["overrides"] for row in rows}) == 2
