"""Every experiment composes and runs end to end with debug=fdr (cnn: procedural data, v1: tiny simulated sessions)."""

import math

import pytest

from tests.helpers import compose_config, multirun_job_summary, read_summary, run_dirs, run_main
from training.toolkit.errors import options_of

EXPERIMENTS = options_of("experiment")
CNN_DATA = "datamodules.cnn."  # the cnn system's experiments: those whose data is its DataModule
CNN_EXPERIMENTS = [
    e for e in EXPERIMENTS if compose_config([f"experiment={e}"]).data._target_.startswith(CNN_DATA)
]


def _small_data_like(cfg) -> list[str]:
    """Procedural data with the experiment's image shape and class count (no download needed)."""
    channels, size, _ = cfg.data.input_shape
    return [
        "data=procedural",
        f"data.procedural.channels={channels}",
        f"data.procedural.image_size={size}",
        f"data.procedural.num_classes={cfg.data.num_classes}",
        "data.procedural.num_samples=200",
        "data.batch_size=8",
    ]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes(experiment):
    cfg = compose_config([f"experiment={experiment}"])
    assert cfg.name == experiment
    assert cfg.trainer.max_epochs >= 1


def _by_data_shape(experiments: list[str]) -> dict[tuple[str, ...], list[str]]:
    """Experiments grouped by the procedural data that stands in for theirs (one multirun per group)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for experiment in experiments:
        groups.setdefault(tuple(_small_data_like(compose_config([f"experiment={experiment}"]))), []).append(
            experiment
        )
    return groups


def test_cnn_experiments_run_with_fast_dev_run(tmp_path):
    # One process per data shape: a Hydra multirun runs its experiments one after another in it.
    for data, experiments in _by_data_shape(CNN_EXPERIMENTS).items():
        run_main(
            tmp_path,
            "--multirun",
            f"experiment={','.join(experiments)}",
            "debug=fdr",
            *data,
            "callbacks.model_summary=null",
        )
    for experiment in CNN_EXPERIMENTS:
        summary = multirun_job_summary(tmp_path, experiment)
        assert summary["status"] == "finished", experiment
        assert 0.0 <= summary["metrics"]["test/acc"] <= 1.0, experiment


V1_EXPERIMENTS = [e for e in EXPERIMENTS if e.startswith("v1_") and e != "v1_transfer"]


def test_v1_experiments_run_with_fast_dev_run_then_transfer(tmp_path):
    """Every v1 experiment on its tier's tiny sessions in one multirun; v1_transfer from v1_pretrain's core."""
    run_main(
        tmp_path,
        "--multirun",
        f"experiment={','.join(V1_EXPERIMENTS)}",
        "size=tiny",
        "debug=fdr",
        "callbacks.model_summary=null",
    )
    for experiment in V1_EXPERIMENTS:
        summary = multirun_job_summary(tmp_path, experiment)
        assert summary["status"] == "finished", experiment
        assert (
            math.isfinite(summary["metrics"]["test/bps"]) and "test/fraction_of_oracle" in summary["metrics"]
        )
    (pretrained,) = (tmp_path / "logs" / "v1_pretrain" / "multiruns").glob("*/*/checkpoints/last.ckpt")
    run_main(
        tmp_path,
        "experiment=v1_transfer",
        "size=tiny",
        "debug=fdr",
        f"model.pretrained_checkpoint={pretrained}",
    )
    (run_dir,) = run_dirs(tmp_path, "v1_transfer")
    assert read_summary(run_dir)["status"] == "finished"
    assert read_summary(run_dir)["metrics"]["test/oracle_bps"] > 0


DESIGN_STANDALONE = [
    "design_encoder",
    "design_abstractor",
    "design_reader",
    "design_decoder",
]  # phase 3: the pipeline test


def test_design_experiments_run_with_fast_dev_run(tmp_path):
    """The design stages that need no earlier checkpoint, on a few 32x32 designs, in one multirun; the
    fine-tune and innovation stages run in tests/experiments/test_design_pipeline.py. (`++`: Hydra composes
    a sweep's base config before the swept experiment picks data=design.)"""
    run_main(
        tmp_path,
        "--multirun",
        f"experiment={','.join(DESIGN_STANDALONE)}",
        "debug=fdr",
        "++data.resolution=32",
        "++data.num_train=16",
        "++data.num_val=8",
        "++data.num_test=8",
        "++data.batch_size=4",
        "callbacks.model_summary=null",
    )
    expected = {
        "design_encoder": "test/text_iou",
        "design_abstractor": "test/goal_acc",
        "design_reader": "test/acc",
        "design_decoder": "test/loss",
    }
    for experiment, metric in expected.items():
        summary = multirun_job_summary(tmp_path, experiment)
        assert summary["status"] == "finished", experiment
        assert math.isfinite(summary["metrics"][metric]), experiment
