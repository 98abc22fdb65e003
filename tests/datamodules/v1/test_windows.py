"""Lagged windows: which frames are samples, lag alignment, unit-id mapping, evaluation fields."""

import pickle

import numpy as np
import pytest
import torch

from datamodules.v1.session import Session, SessionFormatError
from datamodules.v1.windows import SessionData, SessionDraw, WindowDataset, group_collate, window_frames
from tests.datamodules.v1.synthetic_sessions import (
    ALPHA_CONFIG_UNITS,
    ALPHA_TRIALS,
    LAGS,
    amplitude,
    frames_for,
)

TYPES = ["gaborium", "gratings"]


@pytest.fixture(scope="module")
def alpha(tiny_dataset) -> SessionData:
    session = Session(tiny_dataset.data_dir / "sessions" / "alpha")
    return SessionData(session, ALPHA_CONFIG_UNITS, TYPES, LAGS)


def _trials():
    return [{"type": k, "start": a, "stop": b, "split": s} for k, a, b, s in ALPHA_TRIALS]


def test_windows_lie_inside_trials_of_the_selected_types_and_split():
    train = window_frames(_trials(), TYPES, "train", LAGS)
    assert train.tolist() == [*range(2, 10), *range(22, 30), *range(66, 70)]  # 60..62 is shorter than 3 lags
    assert window_frames(_trials(), TYPES, "val", LAGS).tolist() == list(range(12, 20))  # backimage excluded
    assert window_frames(_trials(), ["backimage"], "val", LAGS).tolist() == list(range(52, 60))
    assert window_frames(_trials(), TYPES, "train", 1).tolist() == [
        *range(0, 10),
        *range(20, 30),
        60,
        61,
        *range(64, 70),
    ]


def test_train_fraction_keeps_the_first_trials():
    # 4 training trials of the selected types (by start): 0..10, 20..30, 60..62, 64..70
    assert window_frames(_trials(), TYPES, "train", LAGS, fraction=0.25).tolist() == list(range(2, 10))
    assert window_frames(_trials(), TYPES, "train", LAGS, fraction=0.5).tolist() == [
        *range(2, 10),
        *range(22, 30),
    ]
    assert window_frames(_trials(), TYPES, "train", LAGS, fraction=0.01).tolist() == list(
        range(2, 10)
    )  # >= 1


def test_window_ends_at_frame_t_and_robs_is_robs_at_t(alpha):
    t = np.array([2, 29, 66, 9])
    item = alpha.fetch(t, evaluation=False)
    assert item["stim"].dtype == np.uint8 and item["stim"].shape == (4, LAGS, 6, 8)
    for b, frame in enumerate(t):
        expected = frames_for(np.arange(frame - LAGS + 1, frame + 1))  # lags ascending in time
        np.testing.assert_array_equal(item["stim"][b], expected)
        assert item["stim"][b, -1, 0, 0] == frame
    # config unit ids (12, 10, 14) are meta columns (2, 0, 4); robs[t, u] = (t * (u + 1)) % 4
    columns = np.array([2, 0, 4])
    np.testing.assert_array_equal(item["robs"], (t[:, None] * (columns[None] + 1)) % 4)
    np.testing.assert_array_equal(item["dfs"], ((t[:, None] + columns[None]) % 9 != 0).astype(np.float32))
    lag_t = t[:, None] - np.array([2, 1, 0])
    np.testing.assert_allclose(item["eyepos"], np.stack([0.01 * lag_t, -0.02 * lag_t], axis=-1), rtol=1e-6)
    np.testing.assert_allclose(item["behavior"], t[:, None] * np.array([1, 2]) / 100, rtol=1e-6)
    assert item["robs"].dtype == item["dfs"].dtype == item["eyepos"].dtype == np.float32


def test_no_window_crosses_a_trial_boundary(alpha):
    trial_inds = alpha.session.trial_inds
    for split in ("train", "val", "test"):
        t = alpha.windows(split)
        lag_frames = alpha.lag_frames(t)
        assert (trial_inds[lag_frames] == trial_inds[t][:, None]).all()
        assert (trial_inds[t] >= 0).all()


def test_unit_ids_missing_from_the_session_are_a_clear_error(tiny_dataset):
    session = Session(tiny_dataset.data_dir / "sessions" / "alpha")
    with pytest.raises(SessionFormatError, match=r"unit_ids \[99\] are not in the session"):
        SessionData(session, (10, 99), TYPES, LAGS, where="alpha.yaml")


def test_evaluation_fields_and_padding(alpha):
    t = np.array([32, 33, 72])
    padding = np.array([False, False, True])
    item = alpha.fetch(t, evaluation=True, padding=padding)
    np.testing.assert_array_equal(item["frame"], t)
    assert item["trial"].tolist() == [3, 3, -1]  # padding samples carry trial -1
    assert (item["dfs"][2] == 0).all() and item["dfs"][:2].sum() > 0
    columns = np.array([2, 0, 4])
    robs = (t[:, None] * (columns[None] + 1)) % 4
    np.testing.assert_allclose(item["rates"], (robs + 0.5) / 2)
    np.testing.assert_allclose(item["achievable"], 0.9 * (robs + 0.5) / 2, rtol=1e-6)


def test_rms_contrast_is_the_pixel_std_over_255(alpha):
    contrast = alpha.rms_contrast()
    t = np.arange(80)
    selected = (t < 40) | (t >= 60)
    expected = frames_for(t).reshape(80, -1).astype(np.float64).std(axis=1) / 255
    np.testing.assert_allclose(contrast[selected], expected[selected], rtol=1e-5)
    assert np.isnan(contrast[~selected]).all()  # backimage is not a selected type
    assert amplitude(7) > amplitude(6) and contrast[7] > contrast[6]
    assert list((alpha.path / ".cache").glob("rms_contrast-*.npy"))  # cached beside the session


def test_dataset_groups_draws_by_session_and_accepts_plain_indices(alpha, tiny_dataset):
    beta = SessionData(Session(tiny_dataset.data_dir / "sessions" / "beta"), (1, 2, 3), TYPES, LAGS)
    dataset = WindowDataset([alpha, beta], [alpha.windows("test"), beta.windows("test")], evaluation=True)
    assert len(dataset) == 16 + 13
    batch = group_collate(dataset.__getitems__([14, 15, 16, 17]))  # the last 2 of alpha, the first 2 of beta
    assert list(batch) == ["alpha", "beta"]
    assert batch["alpha"]["frame"].tolist() == [78, 79] and batch["beta"]["frame"].tolist() == [37, 38]
    drawn = group_collate(
        dataset.__getitems__([SessionDraw(1, np.array([0, 1])), SessionDraw(0, np.array([14]))])
    )
    assert list(drawn) == ["beta", "alpha"] and drawn["alpha"]["frame"].tolist() == [78]
    assert isinstance(drawn["beta"]["stim"], torch.Tensor) and drawn["beta"]["stim"].dtype == torch.uint8


def test_dataset_pickles_without_its_memory_maps(alpha):
    """Spawned workers (macOS, Windows) get a small pickle and reopen the session files themselves."""
    dataset = WindowDataset([alpha], [alpha.windows("train")], evaluation=False)
    payload = pickle.dumps(dataset)
    assert len(payload) < 10_000  # the session's arrays are never copied into it
    copy = pickle.loads(payload)
    np.testing.assert_array_equal(
        copy.__getitems__([3])[0][1]["stim"], dataset.__getitems__([3])[0][1]["stim"]
    )
