"""The v1 experiments configure the model their data needs."""

import pytest

from datamodules.v1.dataset_configs import dataset_parent
from datamodules.v1.simulator.tiers import tier_spec
from tests.helpers import CONF_DIR, compose_config

V1_EXPERIMENTS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("v1_*.yaml"))


@pytest.mark.parametrize("experiment", V1_EXPERIMENTS)
def test_a_shifter_is_learned_exactly_where_the_gaze_has_a_calibration_error(experiment):
    """T2/T3 crop the stimulus at the measured gaze (true + a smooth calibration field of 0.1-0.5 deg, i.e.
    2-8 px at 16 px/deg): without a shifter the core sees misaligned images (T3 trained without one until
    this test), and on perfect gaze a shifter only adds noise."""
    overrides = [f"experiment={experiment}", "model.pretrained_checkpoint=unused.ckpt"]
    cfg = compose_config(overrides if experiment == "v1_transfer" else overrides[:1])
    parent = dataset_parent(cfg.data.dataset_configs_path, cfg.v1.dataset)
    miscalibrated = tier_spec(parent["simulate"]["tier"]).calibration_error
    assert (cfg.model.net.shifter is not None) == miscalibrated, cfg.v1.dataset
    assert (cfg.model.regularization.shifter > 0) == miscalibrated
