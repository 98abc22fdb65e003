"""Recovery metrics on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.v1.recovery import readout_centers_deg, rf_center_error, shifter_field_error


def test_readout_positions_to_degrees() -> None:
    positions = torch.tensor([[0.5, -0.25], [0.0, 0.0]])  # 32x32 frame: (8, -4) px from the centre
    np.testing.assert_allclose(readout_centers_deg(positions, 16.0, (32, 32)), [[0.5, -0.25], [0.0, 0.0]])
    np.testing.assert_allclose(readout_centers_deg(positions, 16.0, (32, 32), y_axis_up=True)[0], [0.5, 0.25])
    np.testing.assert_allclose(
        readout_centers_deg(positions, 16.0, (32, 32), rf_offset_px=(1, 2))[1], [1 / 16, 2 / 16]
    )


def test_rf_center_error() -> None:
    result = rf_center_error([[0.5, 0.0], [0.0, 0.0]], [[0.5, 0.3], [0.4, 0.0]], 16.0, (32, 32))
    np.testing.assert_allclose(result["error_deg"], [0.3, 0.4])
    assert result["mean_deg"] == pytest.approx(0.35)
    assert result["rms_deg"] == pytest.approx(np.sqrt((0.09 + 0.16) / 2))


def linear_field():
    grid_x, grid_y = np.linspace(-2, 2, 5), np.linspace(-1, 1, 3)
    gaze = np.stack(np.meshgrid(grid_x, grid_y), axis=-1)
    matrix, offset = np.array([[0.05, 0.02], [-0.03, 0.04]]), np.array([0.2, -0.1])
    return grid_x, grid_y, gaze @ matrix.T + offset, matrix, offset


def test_ideal_shifter_scores_zero_and_a_constant_offset_is_separated() -> None:
    grid_x, grid_y, field, matrix, offset = linear_field()
    inverse = np.linalg.inv(np.eye(2) + matrix)

    def ideal(measured: torch.Tensor) -> torch.Tensor:  # undo the field at the true gaze
        true = (measured.double().numpy() - offset) @ inverse.T
        return torch.as_tensor(-(true @ matrix.T + offset))

    result = shifter_field_error(ideal, grid_x, grid_y, field)
    assert result["rms_deg"] < 1e-6 and result["rms_raw_deg"] < 1e-6
    shifted = shifter_field_error(lambda g: ideal(g) + torch.tensor([0.03, -0.04]), grid_x, grid_y, field)
    assert shifted["rms_deg"] < 1e-6
    assert shifted["rms_raw_deg"] == pytest.approx(0.05)
    np.testing.assert_allclose(shifted["constant_offset_deg"], [0.03, -0.04], atol=1e-6)


def test_zero_shifter_error_is_the_field_spread() -> None:
    grid_x, grid_y, field, _, _ = linear_field()
    result = shifter_field_error(lambda g: torch.zeros_like(g), grid_x, grid_y, field)
    centred = field - field.mean(axis=(0, 1))
    assert result["rms_deg"] == pytest.approx(np.sqrt((centred**2).sum(-1).mean()))
    flipped = shifter_field_error(lambda g: torch.zeros_like(g), grid_x, grid_y, field, y_axis_up=True)
    assert flipped["rms_deg"] == pytest.approx(result["rms_deg"])
