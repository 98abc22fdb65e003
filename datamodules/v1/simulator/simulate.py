"""Simulate sessions of a tier and write them (with truth/ and dataset configs); cached by config hash.

`simulate_tier` is the public entry (the CLI and the datamodule call it). Every array is
deterministic from (tier, size, seed): each trial's world, gaze and tracker noise have their own
seeded generator, so a session is byte-identical however often it is re-simulated. A session folder
whose meta.json has the same generator version and config hash is kept as it is (unless `force`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock
from threadpoolctl import threadpool_limits

from datamodules.v1.session import META_FILE, write_session
from datamodules.v1.simulator.configs import BEHAVIOR_NAMES, write_configs
from datamodules.v1.simulator.masks import dropout_blocks, validity
from datamodules.v1.simulator.plan import GENERATOR_NAME, GENERATOR_VERSION, SessionPlan, TierPlan, plan_tier
from datamodules.v1.simulator.recording import Recording, record, session_calibration
from datamodules.v1.simulator.responses import (
    expected_counts,
    hidden_gain,
    hidden_state,
    poisson_spikes,
    running_speed,
    stimulus_drive,
)
from datamodules.v1.simulator.units import Units, draw_units
from models.v1.schema import TRUTH_CALIBRATION, TRUTH_UNITS

log = logging.getLogger(__name__)


def default_data_dir() -> Path:
    """`$VISIONCORE_ROOT/data`, or `./data` (the same place as conf/paths `data_dir`)."""
    return Path(os.environ.get("VISIONCORE_ROOT", ".")) / "data"


@dataclass
class SimulatedSession:
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    truth: dict[str, Any]


def simulate_session(plan: SessionPlan) -> SimulatedSession:
    """All arrays, meta and truth of one session (nothing written).

    BLAS runs single-threaded: the work is many small products, which multi-threaded BLAS slows
    down by 10x or more on a busy machine (e.g. beside DDP ranks).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _simulate_session(plan)


def session_rates(
    plan: SessionPlan, units: Units, recording: Recording
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and achievable lambda (T, N) of a recording, and the hidden state (T,) behind them."""
    frames, signals = plan.num_frames, recording.signals
    drive = stimulus_drive(signals["center"], signals["surround"], signals["pool"], units)
    hidden = plan.tier.hidden_gain
    state = hidden_state(plan.rng("hidden"), frames, plan.size.rate_hz) if hidden else np.zeros(frames)
    rates, achievable = expected_counts(
        drive, recording.saccade, hidden_gain(state, units), units, plan.size.rate_hz
    )
    return rates, achievable, state


def _simulate_session(plan: SessionPlan) -> SimulatedSession:
    tier, size, frames, count = plan.tier, plan.size, plan.num_frames, plan.num_units
    units = draw_units(plan)
    recording = record(plan, units)
    rates, achievable, state = session_rates(plan, units, recording)
    robs = poisson_spikes(plan.rng("spikes"), rates)
    dropped = dropout_blocks(plan.rng("dropout"), frames, count, tier.dropout)
    records = units.records()
    for unit, start, stop in dropped:
        robs[start:stop, unit] = 0  # the sorter lost the unit: no spikes recorded (and dfs = 0)
        records[unit]["dropout_blocks"].append([start, stop])
    trial_inds = np.full(frames, -1, dtype=np.int32)
    for trial in plan.trials:
        trial_inds[trial.start : trial.stop] = trial.id
    arrays = {f"stim_{kind}": recording.stored[a:b] for kind, (a, b) in plan.blocks.items()}
    arrays |= {
        "robs": robs,
        "dfs": validity(frames, count, plan.trials, size.lags, recording.closed, dropped),
        "eyepos": recording.eyepos,
        "trial_inds": trial_inds,
        "saccade_onsets": recording.onsets,
    }
    truth: dict[str, Any] = {
        "rates": rates,
        "gaze": recording.true_gaze,
        f"{TRUTH_CALIBRATION}.npz": session_calibration(plan).arrays(),
        TRUTH_UNITS: records,
    }
    meta = _meta(plan, recording.stored)
    if tier.hidden_gain:
        arrays["behavior"] = running_speed(plan.rng("hidden", 1), state)
        truth |= {"achievable_rates": achievable, "hidden_state": state.astype(np.float32)}
        meta["behavior"] = BEHAVIOR_NAMES
    return SimulatedSession(meta, arrays, truth)


def _meta(plan: SessionPlan, stored: np.ndarray) -> dict[str, Any]:
    size = plan.size
    return {
        "session": plan.name,
        "subject": plan.subject,
        "sampling_rate_hz": size.rate_hz,
        "pixels_per_degree": size.pixels_per_degree,
        "frame_shape": [size.frame_px, size.frame_px],
        "num_frames": plan.num_frames,
        "unit_ids": list(plan.unit_ids),
        "stim_types": {
            kind: {"file": f"stim_{kind}.npy", "start": a, "stop": b} for kind, (a, b) in plan.blocks.items()
        },
        "trials": [
            {
                "id": t.id,
                "type": t.type,
                "start": t.start,
                "stop": t.stop,
                "split": t.split,
                "repeat": t.repeat,
            }
            for t in plan.trials
        ],
        "stim_stats": {
            "mean": float(stored.mean(dtype=np.float64)),
            "std": float(stored.std(dtype=np.float64)),
        },
        "generator": {
            "name": GENERATOR_NAME,
            "version": GENERATOR_VERSION,
            "seed": plan.seed,
            "tier": plan.tier.name,
            "size": plan.size.name,
            "part": plan.part,
            "lags": size.lags,
            "config_hash": plan.config_hash,
        },
    }


def is_current(folder: Path, plan: SessionPlan) -> bool:
    """True when `folder` holds this session written by this generator version from this config."""
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return False
    try:
        generator = json.loads(meta_path.read_text()).get("generator", {})
    except json.JSONDecodeError:
        return False
    return generator.get("version") == GENERATOR_VERSION and generator.get("config_hash") == plan.config_hash


def write_simulated_session(plan: SessionPlan, folder: Path) -> Path:
    """Simulate `plan` into `folder`, replacing whatever was there (stale arrays, preprocessed caches)."""
    if folder.exists():
        shutil.rmtree(folder)
    session = simulate_session(plan)
    return write_session(folder, meta=session.meta, arrays=session.arrays, truth=session.truth)


def simulate_tier(
    tier: str,
    size: str,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    configs_dir: str | os.PathLike | None = None,
    force: bool = False,
    workers: int = 1,
) -> Path:
    """Simulate (or keep cached) every session of a tier and write its dataset configs.

    Sessions go to `<data_dir>/v1/<tier>_<size>_seed<seed>/<session>/`; configs to `configs_dir`
    (default `<data_dir>/v1/dataset_configs`). `workers` > 1 simulates sessions in that many
    processes (same bytes). Returns the dataset-config folder (for T3 the `_pretrain` one;
    `_transfer` sits beside it).
    """
    plan = plan_tier(tier, size, seed)
    data_root = Path(data_dir) if data_dir is not None else default_data_dir()
    folder = data_root / plan.data_folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Calls at once (runs started together, a results table's parallel rows) take turns: writing replaces a
    # session's folder, which would pull it from under a call still writing or reading it; the one that
    # waited then finds the sessions current.
    with FileLock(folder.parent / f".{folder.name}.lock"):
        return _simulate_tier(plan, seed, data_root, configs_dir, force, workers)


def _simulate_tier(
    plan: TierPlan,
    seed: int,
    data_root: Path,
    configs_dir: str | os.PathLike | None,
    force: bool,
    workers: int,
) -> Path:
    jobs = []
    for session in plan.sessions:
        folder = data_root / plan.data_folder / session.name
        if not force and is_current(folder, session):
            log.info("kept    %s (cached: same generator version and config)", folder)
        else:
            jobs.append((plan.tier.name, plan.size.name, seed, session.index, str(folder)))
    parallel = workers > 1 and len(jobs) > 1
    pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) if parallel else None
    with pool or nullcontext():
        for report in (pool.map if pool else map)(_write_job, jobs):
            log.info("wrote   %s", report)
    folders = write_configs(
        plan, configs_dir if configs_dir is not None else data_root / "v1" / "dataset_configs"
    )
    for folder in folders:
        log.info("configs %s", folder)
    return folders[0]


def _write_job(job: tuple[str, str, int, int, str]) -> str:
    """Simulate one session (a picklable job for worker processes); returns a one-line report."""
    tier, size, seed, index, folder = job
    session = plan_tier(tier, size, seed).sessions[index]
    started = time.perf_counter()
    write_simulated_session(session, Path(folder))
    megabytes = sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) / 1e6
    return (
        f"{folder} ({session.num_frames} frames, {session.num_units} units, {megabytes:.1f} MB) "
        f"in {time.perf_counter() - started:.1f} s"
    )
