"""Cone adaptation: shape/dtype, step responses that decay, resets at trial starts, the on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest

from datamodules.v1.cones import adapt, cones_frames
from datamodules.v1.session import Session
from datamodules.v1.simulator import plan_tier, simulate_tier
from training.toolkit.errors import UserError


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Session:
    root = tmp_path_factory.mktemp("cones")
    simulate_tier("T1", "tiny", 0, root)
    plan = plan_tier("T1", "tiny")
    return Session(root / plan.data_folder / plan.sessions[0].name)


def step(frames: int = 90, at: int = 30, before: int = 128, after: int = 255) -> np.ndarray:
    movie = np.full((frames, 2, 3), before, dtype=np.uint8)
    movie[at:] = after
    return movie


def test_adapted_mid_grey_is_128_and_a_step_decays_toward_baseline():
    out = adapt(step(), [], rate_hz=60.0).astype(int)[:, 0, 0]
    assert np.all(out[:30] == 128)
    transient, settled = out[30] - 128, out[-1] - 128
    assert transient > 20 and np.all(np.diff(out[30:]) <= 0)  # jumps, then only decays
    assert 0 <= settled < 0.4 * transient
    full = adapt(step(), [], rate_hz=60.0, strength=1.0).astype(int)[:, 0, 0]
    assert full[30] > 150 and abs(full[-1] - 128) <= 1  # full Weber adaptation returns to baseline
    darker = adapt(step(after=64), [], rate_hz=60.0).astype(int)[:, 0, 0]
    assert darker[30] < 128 - 20 and darker[30] < darker[-1] <= 128


def test_state_resets_at_trial_starts():
    movie = step(frames=60, at=20, before=40, after=128)  # trial 2 starts (at frame 20) on mid grey
    with_reset = adapt(movie, [20], rate_hz=60.0).astype(int)[:, 0, 0]
    without = adapt(movie, [], rate_hz=60.0).astype(int)[:, 0, 0]
    assert np.all(with_reset[20:] == 128) and without[20] > 140


def test_cached_frames_have_the_stimulus_shape_and_are_reused(session):
    adapted = cones_frames(session, "gaborium")
    assert adapted.dtype == np.uint8 and adapted.shape == session.stim("gaborium").shape
    cache = session.path / "preprocessed" / "cones_stim_gaborium.npy"
    stamp = cache.stat().st_mtime_ns
    again = cones_frames(session, "gaborium")
    assert cache.stat().st_mtime_ns == stamp and np.array_equal(adapted, again)
    stronger = cones_frames(session, "gaborium", gain=150.0)
    assert cache.stat().st_mtime_ns != stamp and np.asarray(stronger).std() > np.asarray(adapted).std()
    assert np.array_equal(cones_frames(session, "gaborium"), adapted)  # back to the defaults


def test_bad_parameters_and_types_are_user_errors(session):
    with pytest.raises(UserError, match="valid: \\['gain', 'sigma', 'strength', 'tau_ms'\\]"):
        cones_frames(session, "gaborium", tau=50)
    with pytest.raises(UserError, match="no stimulus type 'noise'"):
        cones_frames(session, "noise")
