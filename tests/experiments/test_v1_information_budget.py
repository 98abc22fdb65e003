"""experiments/v1_information_budget.py: the simulator re-run with one limitation, scored against its truth."""

import sys
from unittest import mock

import numpy as np
import pytest

from datamodules.v1.simulator.gaze import CalibrationField
from datamodules.v1.simulator.plan import plan_tier
from datamodules.v1.simulator.recording import record, session_calibration
from datamodules.v1.simulator.simulate import simulate_session
from datamodules.v1.simulator.units import draw_units
from tests.helpers import load_script

information_budget = load_script("experiments/v1_information_budget.py")


@pytest.fixture(scope="module")
def t2_tiny() -> dict[str, dict[str, float]]:
    return information_budget.budget("T2", "tiny")


def test_the_unlimited_rates_are_the_simulators_own() -> None:
    for tier in ("T1", "T2"):
        plan = plan_tier(tier, "tiny").sessions[0]
        truth = simulate_session(plan).truth
        rates = information_budget.limited_rates(plan, draw_units(plan), "none", 0.0)
        np.testing.assert_array_equal(rates, truth["achievable_rates" if tier == "T2" else "rates"])


def test_a_zero_offset_and_the_units_own_bank_change_no_recording() -> None:
    plan = plan_tier("T2", "tiny").sessions[0]
    units = draw_units(plan)
    default = record(plan, units)
    hooked = record(
        plan,
        units,
        bank=information_budget.windowed_bank(units, plan, width_px=1e6),
        seen_offset=lambda gaze: np.zeros_like(gaze),
    )
    np.testing.assert_array_equal(hooked.stored, default.stored)
    for name, signal in default.signals.items():
        np.testing.assert_array_equal(hooked.signals[name], signal)


def test_a_window_keeps_only_the_pixels_around_each_units_centre() -> None:
    plan = plan_tier("T1", "tiny").sessions[0]
    units = draw_units(plan)
    bank = information_budget.windowed_bank(units, plan, width_px=5)
    kept = (bank.spatial[:, : len(units)] != 0).sum(0)
    assert kept.max() <= 25 and kept.min() >= 16  # 5 x 5 px, fewer only where a Gabor is exactly 0


def test_latencies_move_every_filter_to_the_nearest_level() -> None:
    plan = plan_tier("T1", "tiny").sessions[0]
    units = draw_units(plan)
    one = information_budget.latency_bank(units, plan, levels=1).kernels
    assert np.ptp(one.biphasic, axis=1).max() == 0 and np.ptp(one.quadrature, axis=1).max() == 0
    two = information_budget.latency_bank(units, plan, levels=2).kernels.biphasic
    early = units.latency_ms < 47.5  # nearer 41.25 ms than 53.75 ms
    assert 0 < early.sum() < len(units)
    assert np.ptp(two[:, early], axis=1).max() == 0 and np.ptp(two[:, ~early], axis=1).max() == 0
    assert not np.allclose(two[:, early][:, 0], two[:, ~early][:, 0])


def test_the_ceilings_order_as_the_limitations_do(t2_tiny) -> None:
    pooled = {label: row["pooled"] for label, row in t2_tiny.items()}
    assert pooled["1 latency"] < pooled["2 latencies"] < pooled["3 latencies"] < 1.0
    assert pooled["receptive field 15 px"] <= pooled["receptive field 21 px"] <= 1.0
    assert pooled["receptive field 31 px"] == pytest.approx(1.0, abs=1e-3)  # larger than the 16 px frame
    assert 0.9 < pooled["no saccade input"] < 1.0
    errors = [
        pooled[f"gaze error: tracker noise + {rms} deg residual"] for rms in (0.0, 0.01, 0.02, 0.038, 0.05)
    ]
    assert errors == sorted(errors, reverse=True) and errors[0] < 1.0 and errors[-1] < 0.9
    # A phase-sensitive simple cell loses more to a displaced image than an energy (complex) cell.
    residual = t2_tiny["gaze error: tracker noise + 0.05 deg residual"]
    assert residual["simple"] < residual["complex"]


def test_the_smooth_residual_has_the_rms_it_is_asked_for_and_the_noise_adds_to_it() -> None:
    plan = plan_tier("T2", "tiny").sessions[0]
    residual = information_budget.smooth_residual(plan, rms_deg=0.04)
    assert information_budget.residual_rms(plan, residual) == pytest.approx(0.04, rel=1e-9)
    noisy = information_budget.with_tracker_noise(plan, residual)
    gaze = np.zeros((10_000, 2))
    noise = noisy(gaze) - residual(gaze)
    assert noise.std() == pytest.approx(0.01, rel=0.05)  # the tracker's 0.01 deg per axis


def test_an_affine_shifter_leaves_nothing_of_an_affine_field_and_something_of_the_true_one() -> None:
    plan = plan_tier("T2", "tiny").sessions[0]
    true_rms = information_budget.residual_rms(plan, information_budget.affine_residual(plan))
    assert 0.005 < true_rms < 0.2  # the simulated fields bend over the gaze range

    true = session_calibration(plan)
    x, y = np.meshgrid(true.grid_x, true.grid_y, indexing="xy")
    affine = np.stack([0.1 + 0.2 * x, -0.05 + 0.05 * x - 0.1 * y], axis=-1)  # bilinear keeps it exact
    field = CalibrationField(true.grid_x, true.grid_y, affine.astype(np.float32))
    with mock.patch.object(information_budget, "session_calibration", lambda _: field):
        residual = information_budget.affine_residual(plan)
    assert information_budget.residual_rms(plan, residual) < 1e-6  # float32 grid values


def test_t1_has_no_gaze_or_saccade_rows_and_the_script_prints_a_table(capsys) -> None:
    labels = [label for label, _, _ in information_budget.limitations("T1")]
    assert not [label for label in labels if "gaze" in label or "saccade" in label]
    with mock.patch.object(sys, "argv", ["v1_information_budget.py", "--tier", "T1", "--size", "tiny"]):
        information_budget.main()
    out = capsys.readouterr().out
    assert "| receptive field 15 px | " in out and "| limitation | pooled | simple |" in out
