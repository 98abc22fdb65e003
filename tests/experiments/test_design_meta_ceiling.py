"""experiments/design_meta_ceiling.py: fixed-length, finite, reproducible layout features; boosted trees on
them beat the constant predictors of goal, tone and the grammar scores."""

import sys
from unittest import mock

import numpy as np

from tests.helpers import load_script

ceiling = load_script("experiments/design_meta_ceiling.py")


def test_every_layout_gives_the_same_finite_features_and_a_seed_gives_the_same_values() -> None:
    _, layouts = ceiling.draw_layouts(40, 64, 0, "train")
    features, names = ceiling.feature_matrix(layouts, words=True)
    assert features.shape == (40, len(names)) and len(set(names)) == len(names)
    assert np.isfinite(features).all()
    again, _ = ceiling.feature_matrix(ceiling.draw_layouts(40, 64, 0, "train")[1], words=True)
    np.testing.assert_array_equal(features, again)
    other, _ = ceiling.feature_matrix(ceiling.draw_layouts(40, 64, 1, "train")[1], words=True)
    assert not np.array_equal(features, other)


def test_the_script_reads_goal_and_tone_better_than_the_constant_predictors(capsys) -> None:
    argv = ["design_meta_ceiling.py", "--train", "300", "--test", "100", "--resolution", "64", "--pixels"]
    with mock.patch.object(sys, "argv", argv):
        results = ceiling.main()
    for reader in ("layout", "layout-margin", "layout+words", "pixels"):
        assert results[reader]["goal_accuracy"] > 0.4
        assert np.mean(results[reader]["tone_mae"]) < np.mean(results["constant"]["tone_mae"])
    assert results["confusion"].sum() == 100
    # the statistics hold the grammar: every score is read better than by its median
    assert np.all(np.array(results["grammar"]["trees"]) < np.array(results["grammar"]["constant"]))
    out = capsys.readouterr().out
    assert "hue features only" in out and "F_Tensor statistics" in out and "wall time" in out
    assert "margin unseen" in out and "grammar MAE" in out
