"""Test-time pictures of a v1 model: bits/spike per unit vs the oracle, receptive fields, shifter field.

Each function returns a matplotlib figure; `report_test_plots` saves them under `<run>/images/` and
logs them (training.toolkit.figures). Sessions' geometry and ground truth come from the datamodule's
sessions (`models.v1.schema.SessionView`), so the same code draws real sessions (no truth overlay) and simulated ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from models.v1.recovery import readout_centers_deg
from models.v1.schema import TRUTH_CALIBRATION, TRUTH_UNITS, SessionView
from training.toolkit.figures import new_figure, report_figure

MAX_SESSIONS = 6  # panels per figure; the rest are summarised in the logged scalars


def plot_bps_vs_oracle(report: Mapping[str, Any]) -> Figure:
    """Per unit: the model's bits/spike against the oracle's (simulated data), or a histogram (real data)."""
    figure = new_figure(5.0, 4.5)
    axes = figure.add_subplot()
    if report["oracle"]:
        for session, result in report["oracle"].items():
            axes.scatter(
                result["oracle_bps"].cpu().numpy(), result["model_bps"].cpu().numpy(), s=10, label=session
            )
        low, high = axes.get_xlim()
        axes.plot([low, high], [low, high], color="grey", linewidth=1, linestyle="--")
        axes.set_xlabel("oracle bits/spike (true rates)")
        axes.set_ylabel("model bits/spike")
        if len(report["oracle"]) <= 8:
            axes.legend(fontsize=7)
    else:
        values = torch.cat([result["bps"] for result in report["bps"].values()]).cpu().numpy()
        axes.hist(values[np.isfinite(values)], bins=30)
        axes.set_xlabel("bits/spike per unit")
        axes.set_ylabel("units")
    axes.set_title("test bits/spike per unit")
    return figure


def plot_receptive_fields(net: torch.nn.Module, sessions: Mapping[str, SessionView]) -> Figure:
    """Readout positions (deg from the frame centre, y up) per session, joined to the true RF centres if known."""
    names = [name for name in net.readouts if name in sessions][:MAX_SESSIONS]
    figure = new_figure(3.2 * len(names), 3.4)
    for index, name in enumerate(names):
        session = sessions[name]
        axes = figure.add_subplot(1, len(names), index + 1)
        centers = readout_centers_deg(
            net.readouts[name].positions,
            session.meta["pixels_per_degree"],
            session.frame_shape,
            y_axis_up=True,
        )
        axes.scatter(centers[:, 0], centers[:, 1], s=12, label="readout")
        truth = true_centers_deg(session)
        if truth is not None:
            axes.scatter(truth[:, 0], truth[:, 1], s=12, marker="x", label="true")
            for (x0, y0), (x1, y1) in zip(centers, truth, strict=True):
                axes.plot([x0, x1], [y0, y1], color="grey", linewidth=0.5)
        half_width = session.frame_shape[1] / 2 / session.meta["pixels_per_degree"]
        axes.set_xlim(-half_width, half_width)
        axes.set_ylim(-half_width, half_width)  # visual-field degrees: y up
        axes.set_aspect("equal")
        axes.set_title(name, fontsize=8)
        axes.set_xlabel("deg")
    if names:
        figure.axes[0].legend(fontsize=7)
    return figure


def plot_core_filters(core: torch.nn.Module) -> Figure:
    """The first layer's spatio-temporal filters (temporal front end x first spatial conv), at their peak lag."""
    temporal = core.frontend.weight.detach().cpu()[:, :, :, 0, 0]  # (T_out, C_in, L)
    spatial = core.blocks[0].spatial.weight.detach().cpu()  # (C_out, T_out, k, k)
    filters = torch.einsum("otyx,tl->olyx", spatial, temporal.sum(1))  # (C_out, L, k, k)
    channels = filters.shape[0]
    columns = min(channels, 8)
    rows = -(-channels // columns)
    figure = new_figure(1.3 * columns, 1.4 * rows)
    for index in range(channels):
        peak = filters[index].abs().flatten(1).sum(1).argmax()
        image = filters[index, peak].numpy()
        axes = figure.add_subplot(rows, columns, index + 1)
        limit = float(np.abs(image).max()) or 1.0
        axes.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes.set_title(f"lag {int(peak)}", fontsize=6)
        axes.axis("off")
    return figure


def plot_shifter_field(shift_deg: Any, session: SessionView) -> Figure:
    """The learned shift over measured gaze, beside the shift that undoes the true calibration error."""
    figure = new_figure(5.0, 4.5)
    axes = figure.add_subplot()
    if session.has_truth_item(TRUTH_CALIBRATION):
        calibration = session.truth(TRUTH_CALIBRATION)
        grid_x, grid_y, field = calibration["grid_x"], calibration["grid_y"], calibration["field"]
    else:
        extent = np.abs(np.asarray(session.eyepos)).max() or 1.0
        grid_x = grid_y = np.linspace(-extent, extent, 9)
        field = None
    gaze = np.stack(np.meshgrid(grid_x, grid_y, indexing="xy"), axis=-1).reshape(-1, 2)
    with torch.no_grad():
        learned = shift_deg(torch.as_tensor(gaze, dtype=torch.float32)).cpu().numpy()
    axes.quiver(gaze[:, 0], gaze[:, 1], learned[:, 0], learned[:, 1], color="C0", label="learned shift")
    if field is not None:
        ideal = -np.asarray(field).reshape(-1, 2)
        axes.quiver(gaze[:, 0], gaze[:, 1], ideal[:, 0], ideal[:, 1], color="C1", alpha=0.6, label="true")
        axes.legend(fontsize=7)
    axes.set_xlabel("gaze x (deg)")
    axes.set_ylabel("gaze y (deg)")
    axes.set_title(f"shifter field, {session.name}")
    return figure


def true_centers_deg(session: SessionView) -> np.ndarray | None:
    """(N, 2) true RF centres of the session's units in meta order, or None for real data."""
    if not session.has_truth_item(TRUTH_UNITS):
        return None
    by_id = {int(unit["id"]): unit["center_deg"] for unit in session.truth(TRUTH_UNITS)}
    return np.array([by_id[unit] for unit in session.unit_ids], dtype=np.float64)


def report_test_plots(module: Any, report: Mapping[str, Any], sessions: Mapping[str, SessionView]) -> None:
    """Write and log every test figure the model supports."""
    net = module.net
    report_figure(module, plot_bps_vs_oracle(report), "test/bps_vs_oracle", "bps_vs_oracle.png")
    if hasattr(net, "readouts") and hasattr(next(iter(net.readouts.values())), "positions"):
        report_figure(
            module, plot_receptive_fields(net, sessions), "test/receptive_fields", "receptive_fields.png"
        )
    if hasattr(net, "core") and hasattr(net.core, "frontend") and hasattr(net.core, "blocks"):  # V1Core
        report_figure(module, plot_core_filters(net.core), "test/core_filters", "core_filters.png")
    shifters = getattr(net, "shifters", None)
    if shifters:
        name = next(name for name in shifters if name in sessions)
        figure = plot_shifter_field(shifters[name].shift_deg, sessions[name])
        report_figure(module, figure, "test/shifter_field", "shifter_field.png")
