"""The V1 simulator: deterministic, consistent truth, the tiers' gaze/cell/stimulus properties, caching, CLI."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from datamodules.v1.__main__ import main
from datamodules.v1.session import Session
from datamodules.v1.simulator import plan_tier, simulate_tier
from datamodules.v1.simulator import simulate as simulate_module
from datamodules.v1.simulator.gaze import CalibrationField
from datamodules.v1.simulator.recording import geometry_of, trial_world
from datamodules.v1.simulator.responses import FilterBank, trial_drive
from datamodules.v1.simulator.stimuli import crop, to_pixels
from datamodules.v1.simulator.units import draw_units, temporal_kernels
from datamodules.v1.windows import FrameSource


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """T0, T1 and T2 at size tiny, seed 0, simulated once for this module (read-only)."""
    root = tmp_path_factory.mktemp("simulated")
    for tier in ("T0", "T1", "T2"):
        simulate_tier(tier, "tiny", 0, root)
    return root


def sessions(data_dir: Path, tier: str) -> list[Session]:
    plan = plan_tier(tier, "tiny", 0)
    return [Session(data_dir / plan.data_folder / s.name) for s in plan.sessions]


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def test_same_seed_is_byte_identical_and_another_seed_differs(data_dir, tmp_path):
    simulate_tier("T2", "tiny", 0, tmp_path / "again")
    simulate_tier("T2", "tiny", 1, tmp_path / "other")
    folder = "v1/t2_tiny_seed0"
    first, again = file_bytes(data_dir / folder), file_bytes(tmp_path / "again" / folder)
    assert len(first) > 20 and first == again
    other = Session(tmp_path / "other" / "v1/t2_tiny_seed1" / plan_tier("T2", "tiny", 1).sessions[0].name)
    mine = sessions(data_dir, "T2")[0]
    assert not np.array_equal(mine.stim("gaborium")[:50], other.stim("gaborium")[:50])
    assert mine.robs.shape != other.robs.shape or not np.array_equal(mine.robs, other.robs)


@pytest.mark.parametrize("tier", ["T0", "T1", "T2"])
def test_mean_spike_count_matches_true_rate(data_dir, tier):
    """Poisson check pooled over valid entries: |sum spikes - sum lambda| within 4 standard errors."""
    for session in sessions(data_dir, tier):
        valid = np.asarray(session.dfs, bool)
        spikes = np.asarray(session.robs, float)[valid].sum()
        expected = np.asarray(session.truth("rates"), float)[valid].sum()
        assert abs(spikes - expected) < 4 * np.sqrt(expected), (session.name, spikes, expected)
        # Mean rates are lognormal around 7 Hz: the session mean is within 3-20 Hz.
        assert 3 < expected / valid.sum() * session.meta["sampling_rate_hz"] < 20


def test_unit_mix_fractions():
    """T1: ~35% simple, ~50% complex, ~15% other over all sessions; T0: simple only."""
    types = np.concatenate([draw_units(s).cell_type for s in plan_tier("T1", "small").sessions])
    fractions = {kind: float(np.mean(types == kind)) for kind in ("simple", "complex", "other")}
    assert fractions == pytest.approx({"simple": 0.35, "complex": 0.50, "other": 0.15}, abs=0.02)
    subtypes = np.concatenate([draw_units(s).subtype for s in plan_tier("T1", "small").sessions])
    assert {"surround_suppressed", "direction_selective", "non_visual"} <= set(subtypes)
    assert set(draw_units(plan_tier("T0", "small").sessions[0]).cell_type) == {"simple"}


def test_temporal_filters_are_causal_and_fit_the_lag_window():
    """Peak 2-4 bins after the frame at 60 Hz (35-60 ms latency), ~nothing at lag 0, all in `lags` taps."""
    for size in ("small", "full"):
        plan = plan_tier("T1", size).sessions[0]
        kernels = temporal_kernels(draw_units(plan), plan.size).biphasic
        assert kernels.shape == (plan.size.lags, plan.num_units)
        peak_ms = (kernels.argmax(0) + 0.5) * 1000 / plan.size.rate_hz
        assert np.all((peak_ms > 25) & (peak_ms < 75))
        assert np.abs(kernels[0]).max() < 0.03 and np.abs(kernels[-1]).max() < 0.15
        assert np.allclose(np.linalg.norm(kernels, axis=0), 1, atol=1e-5)


def test_drive_at_frame_t_ignores_later_frames():
    plan = plan_tier("T1", "tiny").sessions[0]
    bank = FilterBank.of(draw_units(plan), plan.size)
    contrast = np.random.default_rng(0).uniform(-1, 1, size=(40, 16 * 16)).astype(np.float32)
    changed = contrast.copy()
    changed[25:] = 0
    before, after = trial_drive(contrast, bank)["center"], trial_drive(changed, bank)["center"]
    assert np.array_equal(before[:25], after[:25]) and not np.allclose(before[25:], after[25:])


@pytest.mark.parametrize("tier", ["T0", "T1"])
def test_perfect_gaze(data_dir, tier):
    for session in sessions(data_dir, tier):
        assert np.array_equal(session.eyepos, session.truth("gaze"))
        assert np.abs(session.eyepos).max() > 0.1  # the eyes do move


def test_t2_calibration_error_is_smooth_field_plus_noise(data_dir):
    for session in sessions(data_dir, "T2"):
        true, measured = np.asarray(session.truth("gaze")), np.asarray(session.eyepos)
        error = np.linalg.norm(measured - true, axis=1)
        assert 0.1 < np.median(error) < 0.5 and error.min() > 0.05 and error.max() < 0.6
        calibration = session.truth("calibration")
        magnitudes = np.linalg.norm(calibration["field"], axis=-1)
        assert magnitudes.min() >= 0.1 - 1e-6 and magnitudes.max() <= 0.5 + 1e-6
        field = CalibrationField(calibration["grid_x"], calibration["grid_y"], calibration["field"])
        residual = measured - true - field(true.astype(np.float64))
        assert 0.005 < residual.std() < 0.02  # tracker noise (0.01 deg)


def test_t2_stored_stimulus_is_the_world_cropped_at_the_measured_gaze(data_dir):
    plan = plan_tier("T2", "tiny").sessions[0]
    session = sessions(data_dir, "T2")[0]
    geometry = geometry_of(plan)
    for trial in plan.trials[::3]:
        rows = np.arange(trial.start, trial.stop)
        world = trial_world(plan, trial)
        stored = FrameSource(session, session.stim_types).gather(rows)
        assert np.array_equal(stored, to_pixels(crop(world, session.eyepos[rows], geometry)))
        seen = to_pixels(crop(world, session.truth("gaze")[rows], geometry))
        assert not np.array_equal(stored, seen)  # the neurons saw it elsewhere


def test_fixrsvp_repeats_are_marked_and_identical_without_hidden_terms(data_dir):
    session = sessions(data_dir, "T1")[0]
    repeats = [t for t in session.trials if t["type"] == "fixrsvp"]
    assert len(repeats) == 4 and {t["repeat"] for t in repeats} == {0}
    assert {t["split"] for t in repeats} == {"val", "test"}
    assert all(t["repeat"] is None for t in session.trials if t["type"] != "fixrsvp")
    rates = [np.asarray(session.truth("rates")[t["start"] : t["stop"]]) for t in repeats]
    assert all(np.array_equal(rates[0], r) for r in rates[1:])


def test_t2_hidden_gain_behaviour_and_dropout(data_dir):
    for session in sessions(data_dir, "T2"):
        assert session.behavior.shape == (session.num_frames, 1) and session.meta["behavior"] == [
            "running_speed"
        ]
        rates, achievable = np.asarray(session.truth("rates")), np.asarray(session.truth("achievable_rates"))
        hidden = np.asarray(session.truth("hidden_state"))
        log_ratio = np.log(rates / achievable)  # loading * hidden state + constant, per unit
        assert all(np.corrcoef(log_ratio[:, u], hidden)[0, 1] > 0.999 for u in range(session.num_units))
        assert np.corrcoef(session.behavior[:, 0], hidden)[0, 1] > 0.5
        blocks = [(u, b) for u, unit in enumerate(session.truth("units")) for b in unit["dropout_blocks"]]
        assert blocks
        for unit, (start, stop) in blocks:
            assert not session.dfs[start:stop, unit].any() and not session.robs[start:stop, unit].any()


def test_cache_keeps_sessions_and_force_rewrites(tmp_path):
    simulate_tier("T0", "tiny", 0, tmp_path)
    files = [*(tmp_path / "v1").rglob("*.npy"), *(tmp_path / "v1").rglob("meta.json")]
    stamps = {f: f.stat().st_mtime_ns for f in files}
    simulate_tier("T0", "tiny", 0, tmp_path)
    assert {f: f.stat().st_mtime_ns for f in files} == stamps
    contents = {f: f.read_bytes() for f in files}
    simulate_tier("T0", "tiny", 0, tmp_path, force=True)
    assert all(f.stat().st_mtime_ns != stamps[f] for f in files)
    assert {f: f.read_bytes() for f in files} == contents


def test_calls_at_once_take_turns_and_write_each_session_once(tmp_path, monkeypatch):
    # Two runs of a parallel results table reach a missing dataset together: the second waits for the
    # first's sessions instead of deleting the folders the first is writing, then keeps them.
    written, write = [], simulate_module._write_job

    def slow_write(job):
        written.append(job[-1])
        time.sleep(0.2)  # long enough for the other call to find the sessions still missing
        return write(job)

    monkeypatch.setattr(simulate_module, "_write_job", slow_write)
    results, errors = [], []

    def call():
        try:
            results.append(simulate_tier("T0", "tiny", 0, tmp_path))
        except Exception as error:  # reported below: an exception in a thread would pass silently
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    sessions = plan_tier("T0", "tiny", 0).sessions
    assert sorted(written) == sorted(
        str(tmp_path / plan_tier("T0", "tiny", 0).data_folder / s.name) for s in sessions
    )
    for session in sessions:
        Session(tmp_path / plan_tier("T0", "tiny", 0).data_folder / session.name)  # whole and readable


def test_cli_simulates_and_rejects_bad_values(tmp_path, capsys):
    assert main(["simulate", "tier=T0", "size=tiny", f"data_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert (
        "wrote" in out
        and "done in" in out
        and (tmp_path / "v1/dataset_configs/t0_tiny/parent.yaml").is_file()
    )
    assert main(["simulate", "tier=T7", "size=tiny"]) == 2
    assert "valid tiers: T0, T1, T2, T3" in capsys.readouterr().err
    assert main(["simulate", "tier=T1", "size=huge"]) == 2
    assert "valid sizes: tiny, small, full" in capsys.readouterr().err
    assert main(["simulate", "tier=T1", "size=tiny", "colour=red"]) == 2
    assert "valid keys: tier, size, seed" in capsys.readouterr().err
