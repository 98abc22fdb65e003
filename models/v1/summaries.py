"""Scalars to log from per-session metric results: per session, pooled over sessions, per cell type.

Pooling concatenates the sessions' per-unit sums (bits gained, spikes, oracle pieces) and reuses the
metrics' own summary functions, so "pooled over sessions" means spike-weighted over all units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from models.v1.metrics import ORACLE_PIECES, bps_summary, oracle_summary
from models.v1.recovery import rf_center_error, shifter_field_error
from models.v1.schema import TRUTH_CALIBRATION, SessionView

BPS_SCALARS = ("pooled", "mean", "median", "clamped_mean")
ORACLE_SCALARS = {
    "fraction_of_oracle": "fraction_pooled",
    "fraction_of_oracle_median": "fraction_median",
    "oracle_bps": "oracle_bps_pooled",
    "oracle_information": "information_pooled",
    "oracle_information_se": "information_se_pooled",
    "bps_fraction_of_oracle": "bps_fraction_pooled",
}


def _concat(results: Mapping[str, Mapping[str, torch.Tensor]], key: str) -> torch.Tensor:
    return torch.cat([result[key] for result in results.values()])


def summarize_bps(stage: str, per_session: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, float]:
    """`<stage>/bps` (spike-weighted over every unit), its mean/median/clamped mean, and `<stage>/bps/<session>`."""
    if not per_session:
        return {}
    overall = bps_summary(_concat(per_session, "ll_gain_bits"), _concat(per_session, "spikes"))
    scalars = {f"{stage}/bps": float(overall["pooled"])}
    scalars |= {f"{stage}/bps_{name}": float(overall[name]) for name in BPS_SCALARS if name != "pooled"}
    scalars |= {f"{stage}/bps/{session}": float(result["pooled"]) for session, result in per_session.items()}
    return scalars


def summarize_oracle(
    stage: str,
    per_session: Mapping[str, Mapping[str, torch.Tensor]],
    cell_types: Mapping[str, Sequence[str]] | None = None,
    reference: str = "oracle",
) -> dict[str, float]:
    """Fraction of the oracle (pooled, median unit, per cell type) and the oracle's own bits/spike.

    `reference` names the truth in the keys: "achievable" (the rates without the hidden gain) logs
    `fraction_of_achievable`, `achievable_bps`, ... beside the oracle's."""
    if not per_session:
        return {}
    pieces = {name: _concat(per_session, name) for name in ORACLE_PIECES}
    overall = oracle_summary(pieces)
    scalars = {
        f"{stage}/{key.replace('oracle', reference)}": float(overall[source])
        for key, source in ORACLE_SCALARS.items()
    }
    if cell_types and all(session in cell_types for session in per_session):
        types = [kind for session in per_session for kind in cell_types[session]]
        for kind in sorted(set(types)):
            chosen = torch.tensor([t == kind for t in types])
            subset = oracle_summary({name: values[chosen] for name, values in pieces.items()})
            scalars[f"{stage}/fraction_of_{reference}/{kind}"] = float(subset["fraction_pooled"])
            scalars[f"{stage}/fraction_of_{reference}_median/{kind}"] = float(subset["fraction_median"])
    return scalars


def summarize_recovery(
    stage: str, net: torch.nn.Module, sessions: Mapping[str, SessionView]
) -> dict[str, float]:
    """Simulation only: readout position vs true RF centre (deg) and learned vs true shifter field (deg)."""
    from models.v1.plots import true_centers_deg

    scalars: dict[str, float] = {}
    errors = []
    readouts = getattr(net, "readouts", {})
    for name, session in sessions.items():
        truth = true_centers_deg(session)
        if truth is None or name not in readouts or not hasattr(readouts[name], "positions"):
            continue
        result = rf_center_error(
            readouts[name].positions,
            truth,
            session.meta["pixels_per_degree"],
            session.frame_shape,
            y_axis_up=True,
        )
        errors.append(result["error_deg"])
    if errors:
        scalars[f"{stage}/rf_center_error_deg_median"] = float(np.median(np.concatenate(errors)))
    shifters = getattr(net, "shifters", None) or {}
    field_errors = [
        shifter_field_error(shifters[name].shift_deg, **_calibration(sessions[name]), y_axis_up=True)[
            "rms_deg"
        ]
        for name in shifters
        if name in sessions and sessions[name].has_truth_item(TRUTH_CALIBRATION)
    ]
    if field_errors:
        scalars[f"{stage}/shifter_error_deg"] = float(np.mean(field_errors))
    return scalars


def _calibration(session: SessionView) -> dict[str, np.ndarray]:
    calibration = session.truth(TRUTH_CALIBRATION)
    return {key: calibration[key] for key in ("grid_x", "grid_y", "field")}


def summarize_correlation(
    stage: str, per_session: Mapping[str, Mapping[str, torch.Tensor]]
) -> dict[str, float]:
    """Per-unit Pearson correlation of prediction and counts: mean and median over every unit."""
    if not per_session:
        return {}
    r = _concat(per_session, "r")
    return {
        f"{stage}/cc_mean": float(torch.nanmean(r)),
        f"{stage}/cc_median": float(torch.nanquantile(r, 0.5)),
    }


def summarize_repeats(stage: str, per_session: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, float]:
    """FEVE and correlations with the repeat-averaged response (fixrsvp): medians over every unit."""
    if not per_session:
        return {}
    scalars = {}
    for name in ("feve", "cc_abs", "cc_norm"):
        values = _concat(per_session, name)
        scalars[f"{stage}/{name}_median"] = float(torch.nanquantile(values, 0.5))
    return scalars
