"""How much of a tier's oracle a model limited in one way can reach at best: the ceilings behind T1-T3.

Each row simulates the tier's pretraining sessions again with one limitation and scores those rates, as a
prediction, against the true rates (the achievable rates where the tier has a hidden gain): the fraction
of the oracle (1 - gap/I, `OracleInformation`, over every frame) that a model with the simulator's own
filters and nonlinearities keeps under that limitation alone. A trained model can only do worse.

- `receptive field W px`: every filter (centre, surround, normalisation pool) cut to the W x W pixels
  around the unit's centre, what a core whose receptive field spans W px can see (the default core's
  [11, 5] kernels: 15 px).
- `L latencies`: every unit's temporal filters moved to the nearest of L latencies spread evenly over the
  simulator's range (35-60 ms), what a core whose every feature has one latency, in L copies, can give
  (a core that reads one time step after its nonlinearity must spend channels on each latency it needs;
  `model.net.core.output_steps` reads several).
- `no saccade input`: the saccade-locked gain replaced by each unit's mean gain (no eye-movement input).
- `gaze error E deg`: the image the drive sees displaced by the tracker's white noise (which no shifter
  can know from the measured gaze) plus a smooth residual calibration error whose RMS over the gaze range,
  its mean removed, is E: what a shifter whose `shifter_error_deg` is E leaves (tiers with calibration
  error only); `an affine shifter's residual`: the true calibration field minus its best affine map of
  the gaze, what a shifter that only learned an affine map leaves.

    python experiments/v1_information_budget.py --tier T2 --size small
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamodules.v1.simulator.gaze import TRACKER_NOISE_DEG  # noqa: E402
from datamodules.v1.simulator.plan import SessionPlan, plan_tier  # noqa: E402
from datamodules.v1.simulator.recording import record, session_calibration  # noqa: E402
from datamodules.v1.simulator.responses import FilterBank  # noqa: E402
from datamodules.v1.simulator.simulate import session_rates  # noqa: E402
from datamodules.v1.simulator.tiers import tier_spec  # noqa: E402
from datamodules.v1.simulator.units import (  # noqa: E402
    LATENCY_RANGE_MS,
    OTHER_SUBTYPES,
    Units,
    draw_units,
    frame_coords,
    temporal_kernels,
)
from models.v1.metrics import OracleInformation  # noqa: E402
from models.v1.summaries import summarize_oracle  # noqa: E402

GROUPS = ("simple", "complex", *OTHER_SUBTYPES)
RESIDUAL_WAVES, RESIDUAL_MAX_CPD = 3, 1.0  # the smooth residual: a few plane waves over the gaze


def windowed_bank(units: Units, plan: SessionPlan, width_px: float) -> FilterBank:
    """The units' filters cut to the `width_px` square around each unit's centre."""
    bank = FilterBank.of(units, plan.size)
    x, y = frame_coords(plan.size)
    half = width_px / 2 / plan.size.pixels_per_degree
    inside = (np.abs(x[:, None] - units.center_deg[:, 0]) <= half) & (
        np.abs(y[:, None] - units.center_deg[:, 1]) <= half
    )
    return replace(bank, spatial=bank.spatial * np.tile(inside, 4), pool=bank.pool * inside)


def latency_bank(units: Units, plan: SessionPlan, levels: int) -> FilterBank:
    """The units' filters with each temporal filter at the nearest of `levels` evenly spread latencies."""
    low, high = LATENCY_RANGE_MS
    latencies = low + (np.arange(levels) + 0.5) * (high - low) / levels
    nearest = latencies[np.abs(units.latency_ms[:, None] - latencies).argmin(1)]
    bank = FilterBank.of(units, plan.size)
    return replace(bank, kernels=temporal_kernels(replace(units, latency_ms=nearest), plan.size))


def gaze_grid(plan: SessionPlan) -> np.ndarray:
    """(G, 2) true gazes (deg) of the session's calibration grid: where `shifter_field_error` measures a
    shifter (the gaze range and 0.2 deg beyond), so a residual's RMS here is a `shifter_error_deg`."""
    field = session_calibration(plan)
    return np.stack(np.meshgrid(field.grid_x, field.grid_y, indexing="xy"), axis=-1).reshape(-1, 2)


def smooth_residual(plan: SessionPlan, rms_deg: float) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth field of the gaze (a few plane waves) whose RMS over `gaze_grid`, mean removed (as
    `shifter_field_error` measures a shifter), is `rms_deg`."""
    rng = np.random.default_rng([plan.seed, plan.index])
    frequencies = rng.uniform(-RESIDUAL_MAX_CPD, RESIDUAL_MAX_CPD, size=(RESIDUAL_WAVES, 2))
    phases = rng.uniform(0, 2 * np.pi, size=(RESIDUAL_WAVES, 2))

    def waves(gaze: np.ndarray) -> np.ndarray:
        angle = 2 * np.pi * gaze @ frequencies.T  # (F, waves)
        return np.stack([np.sin(angle + phases[:, axis]).sum(1) for axis in (0, 1)], axis=1)

    grid = waves(gaze_grid(plan).astype(np.float64))
    mean = grid.mean(0)
    scale = rms_deg / np.sqrt(((grid - mean) ** 2).sum(1).mean())
    return lambda gaze: scale * (waves(gaze) - mean)


def affine_residual(plan: SessionPlan) -> Callable[[np.ndarray], np.ndarray]:
    """The session's true calibration field minus its least-squares affine fit over `gaze_grid`: what a
    shifter that is an affine map of the gaze leaves at best."""
    field = session_calibration(plan)

    def design(gaze: np.ndarray) -> np.ndarray:
        return np.column_stack([np.ones(len(gaze)), gaze])

    grid = gaze_grid(plan).astype(np.float64)
    coefficients = np.linalg.lstsq(design(grid), field(grid), rcond=None)[0]
    return lambda gaze: field(gaze) - design(gaze) @ coefficients


def residual_rms(plan: SessionPlan, residual: Callable[[np.ndarray], np.ndarray]) -> float:
    """RMS (deg) of a residual over `gaze_grid`, its mean removed."""
    values = residual(gaze_grid(plan).astype(np.float64))
    return float(np.sqrt(((values - values.mean(0)) ** 2).sum(1).mean()))


def with_tracker_noise(
    plan: SessionPlan, residual: Callable[[np.ndarray], np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    """`record`'s seen_offset: the residual at each frame's gaze plus the tracker's white noise, which no
    shifter can know from the measured gaze."""
    rng = np.random.default_rng([plan.seed, plan.index, 1])

    def offset(gaze: np.ndarray) -> np.ndarray:
        noise = rng.normal(0, TRACKER_NOISE_DEG, size=gaze.shape)
        return (residual(gaze.astype(np.float64)) + noise).astype(np.float32)

    return offset


def limited_rates(plan: SessionPlan, units: Units, limitation: str, value: float) -> np.ndarray:
    """The session's (achievable) rates simulated under one limitation: `none`, `receptive_field` (px),
    `latencies` (how many), `no_saccade`, `gaze_error` (a smooth residual of RMS `value` deg) or `affine_shifter`."""
    if limitation == "receptive_field":
        recording = record(plan, units, bank=windowed_bank(units, plan, value))
    elif limitation == "latencies":
        recording = record(plan, units, bank=latency_bank(units, plan, int(value)))
    elif limitation == "gaze_error":
        recording = record(plan, units, seen_offset=with_tracker_noise(plan, smooth_residual(plan, value)))
    elif limitation == "affine_shifter":
        recording = record(plan, units, seen_offset=with_tracker_noise(plan, affine_residual(plan)))
    else:
        recording = record(plan, units)
    if limitation == "no_saccade":
        recording.saccade = np.broadcast_to(recording.saccade.mean(0), recording.saccade.shape)
    rates, achievable, _ = session_rates(plan, units, recording)
    return achievable if plan.tier.hidden_gain else rates


def limitations(tier: str) -> Iterator[tuple[str, str, float]]:
    """(row label, limitation, value) of every row that applies to `tier`."""
    for width in (15, 21, 31):
        yield f"receptive field {width} px", "receptive_field", float(width)
    for levels in (1, 2, 3):
        yield f"{levels} latenc{'y' if levels == 1 else 'ies'}", "latencies", float(levels)
    if tier_spec(tier).saccade_gain:
        yield "no saccade input", "no_saccade", 0.0
    if tier_spec(tier).calibration_error:
        for rms in (0.0, 0.01, 0.02, 0.038, 0.05):
            yield f"gaze error: tracker noise + {rms} deg residual", "gaze_error", rms
        yield "gaze error: tracker noise + an affine shifter's residual", "affine_shifter", 0.0


def budget(tier: str, size: str, seed: int = 0) -> dict[str, dict[str, float]]:
    """Row label -> {"pooled": fraction, group: fraction} over the tier's pretraining sessions."""
    sessions = [(plan, draw_units(plan)) for plan in plan_tier(tier, size, seed).part("pretrain")]
    groups = {
        plan.name: list(np.where(units.cell_type == "other", units.subtype, units.cell_type))
        for plan, units in sessions
    }
    truths = {plan.name: torch.as_tensor(limited_rates(plan, units, "none", 0.0)) for plan, units in sessions}
    table = {}
    for label, limitation, value in limitations(tier):
        per_session = {}
        for plan, units in sessions:
            rates, metric = truths[plan.name], OracleInformation(len(units))
            prediction = torch.as_tensor(limited_rates(plan, units, limitation, value))
            metric.update(prediction, rates, torch.zeros_like(rates), torch.ones_like(rates))
            per_session[plan.name] = metric.compute()
        scalars = summarize_oracle("budget", per_session, groups)
        table[label] = {"pooled": scalars["budget/fraction_of_oracle"]} | {
            group: scalars[f"budget/fraction_of_oracle/{group}"]
            for group in GROUPS
            if f"budget/fraction_of_oracle/{group}" in scalars
        }
    return table


def markdown(table: dict[str, dict[str, float]]) -> str:
    header = ["limitation", "pooled", *GROUPS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in table.items():
        cells = [f"{row[key]:.3f}" if key in row else "–" for key in header[1:]]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tier", default="T2", choices=["T0", "T1", "T2", "T3"])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "full"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):  # many small products (see simulate_session)
        table = budget(args.tier, args.size, args.seed)
    print(
        f"{args.tier} {args.size} seed {args.seed}: fraction of the oracle a model limited only so can reach"
    )
    print(markdown(table))
    if tier_spec(args.tier).calibration_error:
        plans = plan_tier(args.tier, args.size, args.seed).part("pretrain")
        rms = [residual_rms(plan, affine_residual(plan)) for plan in plans]
        print(
            f"An affine shifter's residual: {np.mean(rms):.3f} deg RMS on average "
            f"({min(rms):.3f}-{max(rms):.3f} over the sessions)"
        )


if __name__ == "__main__":
    main()
