"""Parameter recovery on simulated sessions: receptive-field centres and the shifter's calibration field.

Conventions: readout positions are `grid_sample` coordinates ([-1, 1], align_corners=False, x right,
y down); degrees are measured from the frame centre. Pass `y_axis_up=True` when the ground truth's
degrees grow upwards (screen convention) instead of downwards (image rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence


def _numpy(values: ArrayLike) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    return np.asarray(values, dtype=np.float64)


def readout_centers_deg(
    positions: ArrayLike,
    pixels_per_degree: float,
    frame_shape: Sequence[int],
    rf_offset_px: Sequence[float] = (0.0, 0.0),
    y_axis_up: bool = False,
) -> np.ndarray:
    """(N, 2) readout positions -> (N, 2) degrees from the frame centre.

    Normalised x maps to x * W / 2 pixels from the centre (pixel centres at (2j + 1) / W - 1);
    `rf_offset_px` (x, y) is the core's receptive-field offset (0 for same-padded, stride-1 cores).
    """
    height, width = frame_shape
    pixels = _numpy(positions) * np.array([width / 2, height / 2]) + np.asarray(
        rf_offset_px, dtype=np.float64
    )
    degrees = pixels / pixels_per_degree
    if y_axis_up:
        degrees[:, 1] *= -1
    return degrees


def rf_center_error(
    positions: ArrayLike,
    true_centers_deg: ArrayLike,
    pixels_per_degree: float,
    frame_shape: Sequence[int],
    rf_offset_px: Sequence[float] = (0.0, 0.0),
    y_axis_up: bool = False,
) -> dict[str, np.ndarray | float]:
    """Distance (deg) between each unit's readout position and its true RF centre, with mean/median/RMS."""
    centers = readout_centers_deg(positions, pixels_per_degree, frame_shape, rf_offset_px, y_axis_up)
    error = np.linalg.norm(centers - _numpy(true_centers_deg), axis=1)
    return {
        "error_deg": error,
        "mean_deg": float(error.mean()),
        "median_deg": float(np.median(error)),
        "rms_deg": float(np.sqrt((error**2).mean())),
    }


def shifter_field_error(
    shift_deg: Callable[[torch.Tensor], torch.Tensor],
    grid_x: ArrayLike,
    grid_y: ArrayLike,
    field: ArrayLike,
    y_axis_up: bool = False,
) -> dict[str, np.ndarray | float]:
    """RMS (deg) between a learned shift and the one that undoes the true calibration field.

    `field` (Gy, Gx, 2) is measured - true gaze at the true gazes (grid_x, grid_y). The shifter sees
    the measured gaze g + field(g) and should shift the frame by -field(g) (image axes). A constant
    shift is interchangeable with moving every readout position, so `rms_deg` is taken after removing
    the mean error (`constant_offset_deg`); `rms_raw_deg` keeps it. `shift_deg` is e.g.
    `net.shifters[session].shift_deg` (gaze (M, 2) deg -> shift (M, 2) deg).
    """
    grid_x, grid_y, field = _numpy(grid_x), _numpy(grid_y), _numpy(field)
    true_gaze = np.stack(np.meshgrid(grid_x, grid_y, indexing="xy"), axis=-1)  # (Gy, Gx, 2)
    measured = torch.as_tensor((true_gaze + field).reshape(-1, 2), dtype=torch.float32)
    owner = getattr(shift_deg, "__self__", None)  # a module's bound method: evaluate on its device
    if isinstance(owner, torch.nn.Module):
        measured = measured.to(next(owner.parameters()).device)
    with torch.no_grad():
        learned = _numpy(shift_deg(measured)).reshape(field.shape)
    ideal = -field
    if y_axis_up:
        ideal[..., 1] *= -1  # an upward calibration error is a shift down the image rows
    error = learned - ideal
    offset = error.mean(axis=(0, 1))
    return {
        "rms_deg": float(np.sqrt(((error - offset) ** 2).sum(-1).mean())),
        "rms_raw_deg": float(np.sqrt((error**2).sum(-1).mean())),
        "constant_offset_deg": offset,
        "error_deg": error,
    }
