"""experiments/v1_ensemble.py: the mean prediction of trained v1 runs, tested like one run."""

from __future__ import annotations

import math
import os
from pathlib import Path
from unittest import mock

import pytest

from tests.helpers import cli_env, load_script, read_summary, run_main
from training.toolkit.errors import UserError

ensemble = load_script("experiments/v1_ensemble.py")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """(root, {name: run folder}) of two tiny T1 runs that differ in their seed, and one tiny T0 run."""
    root = tmp_path_factory.mktemp("v1_ensemble")
    folders = {}
    for name, experiment, seed in (
        ("a", "v1_multidataset", 0),
        ("b", "v1_multidataset", 1),
        ("t0", "v1_single", 0),
    ):
        run_main(
            root,
            f"experiment={experiment}",
            "size=tiny",
            "trainer.max_steps=4",
            f"seed={seed}",
            f"run_name={name}",
        )
        folders[name] = root / "logs" / experiment / "runs" / name
    return root, folders


def _ensemble(root: Path, *items: str) -> dict[str, float]:
    with mock.patch.dict(os.environ, cli_env(root), clear=True):
        return ensemble.main([*items, "torch_threads=1"])


def test_one_run_twice_scores_exactly_as_that_run_did(runs):
    root, folders = runs
    metrics = _ensemble(root, str(folders["a"]), str(folders["a"]), "--name", "twice")
    own = read_summary(folders["a"])["metrics"]
    for key in ("test/bps", "test/fraction_of_oracle", "test/loss"):
        assert metrics[key] == pytest.approx(own[key], rel=1e-6, abs=1e-7), key
    assert (root / "logs" / "v1_ensemble" / "twice" / "metrics.json").is_file()


def test_two_seeds_mean_prediction_has_at_most_their_mean_poisson_loss(runs):
    """The Poisson loss r - y log r is convex in the rate r, so the mean rate's loss is at most the mean
    of the members' losses (Jensen), and it equals neither member's."""
    root, folders = runs
    metrics = _ensemble(root, str(folders["a"]), str(folders["b"]))
    losses = [read_summary(folders[name])["metrics"]["test/loss"] for name in ("a", "b")]
    assert metrics["test/loss"] <= sum(losses) / 2 + 1e-7
    assert all(not math.isclose(metrics["test/loss"], loss, rel_tol=1e-6) for loss in losses)


def test_members_of_other_sessions_and_paths_that_are_no_run_are_refused(runs, tmp_path):
    root, folders = runs
    with pytest.raises(UserError, match="other sessions or units"):
        _ensemble(root, str(folders["a"]), str(folders["t0"]))
    with pytest.raises(
        UserError, match=f"{tmp_path / 'nothing'} is neither a checkpoint file nor a run folder"
    ):
        _ensemble(root, str(folders["a"]), str(tmp_path / "nothing"))
    with pytest.raises(UserError, match="holds no finished run"):
        _ensemble(root, str(tmp_path))
