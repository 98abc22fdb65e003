"""Simulated sessions follow the on-disk format; their dataset configs point at them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datamodules.v1.dataset_configs import load_dataset_configs
from datamodules.v1.session import Session
from datamodules.v1.simulator import plan_tier, simulate_tier

UNIT_KEYS = {
    "id",
    "cell_type",
    "subtype",
    "center_deg",
    "sigma_deg",
    "aspect",
    "sf_cpd",
    "ori_deg",
    "phase_deg",
}
UNIT_KEYS |= {"latency_ms", "mean_rate_hz"}


@pytest.fixture(scope="module")
def t3(tmp_path_factory) -> tuple[Path, Path]:
    """T3 tiny (T2 features plus a held-out session): (data_dir, pretrain configs folder)."""
    root = tmp_path_factory.mktemp("t3")
    return root, simulate_tier("T3", "tiny", 0, root)


def test_session_reads_back_with_documented_shapes_and_dtypes(t3):
    root, configs_folder = t3
    plan = plan_tier("T3", "tiny")
    for session_plan in plan.sessions:
        session = Session(root / plan.data_folder / session_plan.name)
        frames, units = session.num_frames, session.num_units
        assert (frames, units) == (600, session_plan.num_units) and session.frame_shape == (16, 16)
        assert session.unit_ids == list(session_plan.unit_ids)
        assert session.stim_types == ["gaborium", "backimage", "gratings", "fixrsvp"]
        for kind, spec in session.meta["stim_types"].items():
            assert session.stim(kind).dtype == np.uint8
            assert session.stim(kind).shape == (spec["stop"] - spec["start"], 16, 16)
        assert session.robs.dtype == np.uint8 and session.robs.shape == (frames, units)
        assert session.dfs.dtype == np.uint8 and set(np.unique(session.dfs)) == {0, 1}
        assert session.eyepos.dtype == np.float32 and session.eyepos.shape == (frames, 2)
        assert session.trial_inds.dtype == np.int32 and session.trial_inds.min() == 0
        onsets = session.saccade_onsets
        assert (
            onsets.dtype == np.int64
            and len(onsets) > 0
            and np.all(np.diff(onsets) > 0)
            and onsets[-1] < frames
        )
        assert session.behavior.dtype == np.float32 and session.behavior.shape == (frames, 1)
        for name in ("rates", "achievable_rates"):
            assert session.truth(name).dtype == np.float32 and session.truth(name).shape == (frames, units)
        assert session.truth("gaze").dtype == np.float32 and session.truth("gaze").shape == (frames, 2)
        calibration = session.truth("calibration")
        assert calibration["field"].shape == (len(calibration["grid_y"]), len(calibration["grid_x"]), 2)
        records = session.truth("units")
        assert [r["id"] for r in records] == session.unit_ids and all(set(r) >= UNIT_KEYS for r in records)
        stored = np.concatenate([np.asarray(session.stim(k), float).ravel() for k in session.stim_types])
        assert session.meta["stim_stats"]["mean"] == pytest.approx(stored.mean())
        assert session.meta["stim_stats"]["std"] == pytest.approx(stored.std())
        assert session.meta["generator"]["tier"] == "T3" and session.meta["generator"]["seed"] == 0


def test_trials_splits_and_lag_masks(t3):
    root, _ = t3
    plan = plan_tier("T3", "tiny")
    session = Session(root / plan.data_folder / plan.sessions[0].name)
    trials = session.trials
    assert [t["id"] for t in trials] == list(range(len(trials)))
    for trial in trials:
        assert np.all(session.trial_inds[trial["start"] : trial["stop"]] == trial["id"])
        assert not session.dfs[trial["start"] : trial["start"] + 7].any()  # lags - 1 = 7 frames
    repeats = [t for t in trials if t["repeat"] is not None]
    assert repeats and all(t["type"] == "fixrsvp" and t["split"] in ("val", "test") for t in repeats)
    # Small T1: ~70/15/15 of the non-repeat trials of each type.
    small = plan_tier("T1", "small").sessions[0]
    splits = [t.split for t in small.trials if t.repeat is None]
    shares = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert shares == pytest.approx({"train": 0.70, "val": 0.15, "test": 0.15}, abs=0.04)


def test_dataset_configs_point_at_the_sessions(t3):
    root, pretrain_folder = t3
    pretrain = load_dataset_configs(pretrain_folder)
    transfer = load_dataset_configs(pretrain_folder.parent / "t3_tiny_transfer")
    assert pretrain_folder.name == "t3_tiny_pretrain"
    assert pretrain.session_names == ["subjA_s01", "subjB_s01"] and transfer.session_names == ["subjC_s01"]
    assert pretrain.lags == 8 and pretrain.frame_shape == (16, 16) and pretrain.sampling_rate_hz == 60.0
    assert pretrain.parent["simulate"] == {"tier": "T3", "size": "tiny", "seed": 0}
    assert pretrain.parent["transforms"] == {"cones": False} and pretrain.parent["behavior"] == [
        "running_speed"
    ]
    assert pretrain.parent["split"] == {"train": "train", "val": "val", "test": "test"}
    for config in pretrain.sessions + transfer.sessions:
        session = Session(config.folder(root))
        assert list(config.unit_ids) == session.unit_ids and config.subject == session.meta["subject"]
