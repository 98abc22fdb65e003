"""Every experiment composes and runs end to end with debug=fdr on small procedural data."""

import pytest

from tests.helpers import CONF_DIR, compose_config, read_summary, run_cli, run_dirs

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
CNN_EXPERIMENTS = [e for e in EXPERIMENTS if e.startswith(("cnn_", "cifar", "mnist", "fashion"))]


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


@pytest.mark.parametrize("experiment", CNN_EXPERIMENTS)
def test_experiment_runs_with_fast_dev_run(tmp_path, experiment):
    cfg = compose_config([f"experiment={experiment}"])
    run_cli(
        tmp_path,
        f"experiment={experiment}",
        "debug=fdr",
        *_small_data_like(cfg),
        "callbacks.model_summary=null",
    )
    (run_dir,) = run_dirs(tmp_path, experiment)
    summary = read_summary(run_dir)
    assert summary["status"] == "finished"
    assert 0.0 <= summary["metrics"]["test/acc"] <= 1.0
