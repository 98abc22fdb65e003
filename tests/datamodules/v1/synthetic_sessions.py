"""Tiny hand-built sessions whose every value is a known function of (frame, unit), for data-path tests.

Frame t is a checkerboard of amplitude `amplitude(t)` around 128 with pixel [0, 0] = t % 256, so a
window's frames name their timeline index; robs[t, u] = (t * (u + 1)) % 4; dfs[t, u] = 0 when
(t + u) % 9 == 0; eyepos[t] = (0.01 t, -0.02 t). Written with the session format's own `write_session`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.v1.dataset_configs import SessionConfig, write_dataset_configs
from datamodules.v1.session import write_session

Trial = tuple[str, int, int, str]  # (stimulus type, start, stop, split)

# Session "alpha": three stimulus blocks, one unselected (backimage), a trial too short for 3 lags
# (60..62) and two frames outside every trial; truth and behaviour. Train windows with lags 3:
# 2..9, 22..29, 66..69 (20); val 12..19 (8; backimage is not selected); test 32..39, 72..79 (16).
ALPHA_TRIALS: list[Trial] = [
    ("gaborium", 0, 10, "train"),
    ("gaborium", 10, 20, "val"),
    ("gaborium", 20, 30, "train"),
    ("gaborium", 30, 40, "test"),
    ("backimage", 40, 50, "train"),
    ("backimage", 50, 60, "val"),
    ("gratings", 60, 62, "train"),
    ("gratings", 64, 70, "train"),
    ("gratings", 70, 80, "test"),
]
ALPHA_BLOCKS = {"gaborium": (0, 40), "backimage": (40, 60), "gratings": (60, 80)}
ALPHA_UNITS = [10, 11, 12, 13, 14]
ALPHA_CONFIG_UNITS = (12, 10, 14)  # a subset, out of order: columns 2, 0, 4
# Session "beta": gaborium only, no truth or behaviour. Windows: train 2..24 (23), val 27..34 (8), test 37..49 (13).
BETA_TRIALS: list[Trial] = [
    ("gaborium", 0, 25, "train"),
    ("gaborium", 25, 35, "val"),
    ("gaborium", 35, 50, "test"),
]
BETA_BLOCKS = {"gaborium": (0, 50)}
BETA_UNITS = [1, 2, 3]
FRAME_SHAPE = (6, 8)
LAGS = 3


def amplitude(t: np.ndarray) -> np.ndarray:
    return (np.asarray(t) * 37) % 100


def frames_for(t: np.ndarray, frame_shape: tuple[int, int] = FRAME_SHAPE) -> np.ndarray:
    rows, cols = np.indices(frame_shape)
    checker = np.where((rows + cols) % 2 == 0, 1, -1)
    t = np.asarray(t)
    frames = 128 + amplitude(t)[:, None, None] * checker[None]
    frames[:, 0, 0] = t % 256
    return frames.astype(np.uint8)


def write_synthetic_session(
    folder: Path,
    name: str,
    unit_ids: Sequence[int],
    trials: Sequence[Trial],
    blocks: dict[str, tuple[int, int]],
    frame_shape: tuple[int, int] = FRAME_SHAPE,
    truth: bool = False,
    behavior_dim: int = 0,
) -> Path:
    num_frames = max(stop for _, stop in blocks.values())
    t = np.arange(num_frames)
    units = np.arange(len(unit_ids))
    frames = frames_for(t, frame_shape)
    robs = ((t[:, None] * (units[None] + 1)) % 4).astype(np.uint8)
    dfs = ((t[:, None] + units[None]) % 9 != 0).astype(np.uint8)
    trial_inds = np.full(num_frames, -1, dtype=np.int32)
    for index, (_, start, stop, _) in enumerate(trials):
        trial_inds[start:stop] = index
    arrays = {f"stim_{kind}": frames[start:stop] for kind, (start, stop) in blocks.items()}
    arrays |= {
        "robs": robs,
        "dfs": dfs,
        "eyepos": np.stack([0.01 * t, -0.02 * t], axis=1).astype(np.float32),
        "trial_inds": trial_inds,
        "saccade_onsets": np.zeros(0, dtype=np.int64),
    }
    meta = {
        "session": name,
        "subject": "synthetic",
        "sampling_rate_hz": 240.0,
        "pixels_per_degree": 10.0,
        "frame_shape": list(frame_shape),
        "num_frames": num_frames,
        "unit_ids": list(unit_ids),
        "stim_types": {
            kind: {"file": f"stim_{kind}.npy", "start": a, "stop": b} for kind, (a, b) in blocks.items()
        },
        "trials": [
            {"id": i, "type": kind, "start": a, "stop": b, "split": split, "repeat": None}
            for i, (kind, a, b, split) in enumerate(trials)
        ],
        "stim_stats": {"mean": float(frames.mean()), "std": float(frames.std())},
    }
    if behavior_dim:
        arrays["behavior"] = (t[:, None] * np.arange(1, behavior_dim + 1)[None] / 100).astype(np.float32)
        meta["behavior"] = [f"b{i}" for i in range(behavior_dim)]
    truth_items = None
    if truth:
        rates = (robs.astype(np.float32) + 0.5) / 2
        truth_items = {
            "rates": rates,
            "achievable_rates": rates * 0.9,
            "units": [
                {"id": unit, "cell_type": ("simple", "complex", "other")[i % 3]}
                for i, unit in enumerate(unit_ids)
            ],
        }
    return write_session(folder, meta=meta, arrays=arrays, truth=truth_items)


@dataclass(frozen=True)
class TinyDataset:
    configs: Path  # dataset-config folder (parent.yaml + alpha.yaml + beta.yaml)
    data_dir: Path  # sessions live in data_dir / "sessions"


def write_tiny_dataset(root: Path, simulate: dict | None = None, write_sessions: bool = True) -> TinyDataset:
    """Sessions alpha and beta under root/data/sessions and their dataset configs under root/configs."""
    data_dir = root / "data"
    if write_sessions:
        write_synthetic_session(
            data_dir / "sessions" / "alpha",
            "alpha",
            ALPHA_UNITS,
            ALPHA_TRIALS,
            ALPHA_BLOCKS,
            truth=True,
            behavior_dim=2,
        )
        write_synthetic_session(data_dir / "sessions" / "beta", "beta", BETA_UNITS, BETA_TRIALS, BETA_BLOCKS)
    parent = {
        "types": ["gaborium", "gratings"],
        "sampling": {"rate_hz": 240.0},
        "lags": LAGS,
        "frame_shape": list(FRAME_SHAPE),
        "transforms": {"cones": False},
        "filters": {},
        "split": {"train": "train", "val": "val", "test": "test"},
        "data_root": "sessions",
        "simulate": simulate,
    }
    sessions = [
        SessionConfig("alpha", "alpha", ALPHA_CONFIG_UNITS, "synthetic"),
        SessionConfig("beta", "beta", tuple(BETA_UNITS), "synthetic"),
    ]
    write_dataset_configs(root / "configs", parent, sessions)
    return TinyDataset(root / "configs", data_dir)
