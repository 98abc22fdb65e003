"""Validation bits/spike, oracle fractions and loss agree for 1 and 2 processes (real DDP, gloo)."""

from __future__ import annotations

import pytest

from tests.helpers import read_summary, run_cli, run_dirs, run_main

TINY_FIT = [
    "experiment=v1_multidataset",
    "size=tiny",
    "trainer.max_steps=4",
    "trainer.enable_progress_bar=false",
]
AGREEING = ("val/bps", "val/bps_median", "val/fraction_of_oracle", "val/oracle_bps", "val/loss")


def test_validation_metrics_do_not_depend_on_the_number_of_processes(tmp_path):
    run_main(tmp_path, *TINY_FIT, "test_after_fit=false", "callbacks.model_summary=null")
    (fit_dir,) = run_dirs(tmp_path, "v1_multidataset")
    checkpoint = fit_dir / "checkpoints" / "last.ckpt"
    metrics = {}
    for trainer, run in (("cpu", run_main), ("ddp_cpu", run_cli)):  # DDP's launcher needs a real command
        run(
            tmp_path,
            "task=validate",
            f"ckpt_path={checkpoint}",
            f"trainer={trainer}",
            "data.eval_batch_size=24",
        )
        newest = max(fit_dir.glob("validate_*"), key=lambda d: d.stat().st_mtime)
        metrics[trainer] = read_summary(newest)["metrics"]
    one, two = metrics["cpu"], metrics["ddp_cpu"]
    sessions = [key for key in one if key.startswith("val/bps/")]
    assert len(sessions) == 2
    # Equal to a few float32 ulps: the predictions are float32 and the two runs batch the windows differently,
    # so kernels may round a window's prediction differently. A wrong reduction (a padding duplicate counted,
    # a mean of the ranks' means) moves them by a window's share of the data or more.
    for key in (*AGREEING, *sessions):
        assert two[key] == pytest.approx(one[key], rel=1e-6, abs=1e-9), key
