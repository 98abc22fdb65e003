"""Photoreceptor ("cones") adaptation: a preprocessing of a session's uint8 frames, not a stimulus type.

Each pixel is divided by a low-pass (exponential, `tau_ms`) of its own recent luminance raised to
`strength` (1 = full Weber adaptation): a luminance step gives a transient that decays back toward
the adapted level. The state is reset at every trial start (adapted to the trial's first frame), so
no trial depends on the one stored before it. Output is uint8 again, 128 for an adapted mid-grey:
`128 + gain * (log(L + sigma) - strength * log(A + sigma) - (1 - strength) * log(0.5 + sigma))`,
with L the luminance in [0, 1] and A its low-pass.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import lfilter

from datamodules.v1.session import Session
from training.toolkit.errors import UserError

CONES_DEFAULTS: dict[str, float] = {"tau_ms": 100.0, "strength": 0.75, "sigma": 0.05, "gain": 100.0}
PREPROCESSED_DIR = "preprocessed"


def cones_settings(params: dict[str, Any]) -> dict[str, float]:
    """CONES_DEFAULTS updated by `params`; unknown keys are a UserError naming the valid ones."""
    unknown = sorted(set(params) - set(CONES_DEFAULTS))
    if unknown:
        raise UserError(
            f"Unknown cones parameter(s) {unknown}; valid: {sorted(CONES_DEFAULTS)} "
            "(set them under the data config's cones transform)."
        )
    return {key: float(params.get(key, default)) for key, default in CONES_DEFAULTS.items()}


def adapt(
    frames: np.ndarray,
    trial_starts: Iterable[int],
    rate_hz: float,
    tau_ms: float = CONES_DEFAULTS["tau_ms"],
    strength: float = CONES_DEFAULTS["strength"],
    sigma: float = CONES_DEFAULTS["sigma"],
    gain: float = CONES_DEFAULTS["gain"],
) -> np.ndarray:
    """uint8 (T, H, W) adapted frames; the adaptation state restarts at 0 and at every `trial_starts` index."""
    decay = float(np.exp(-1000.0 / (tau_ms * rate_hz)))
    bounds = sorted({0, *(int(s) for s in trial_starts if 0 < s < len(frames))}) + [len(frames)]
    out = np.empty(frames.shape, dtype=np.uint8)
    offset = (1 - strength) * np.log(0.5 + sigma)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        luminance = np.asarray(frames[start:stop], dtype=np.float32) / 255.0
        # A[t] = (1 - decay) L[t] + decay A[t-1], starting adapted to the first frame.
        adapted, _ = lfilter([1 - decay], [1, -decay], luminance, axis=0, zi=decay * luminance[:1])
        response = np.log(luminance + sigma) - strength * np.log(adapted + sigma) - offset
        out[start:stop] = np.clip(np.rint(128 + gain * response), 0, 255)
    return out


def cones_frames(session: Session | str | os.PathLike, kind: str, **params: Any) -> np.ndarray:
    """Memory-mapped uint8 adapted frames of one stimulus type, cached in `<session>/preprocessed/`.

    The cache `cones_<stimfile>` is reused while its sidecar JSON records the same parameters and
    source file; otherwise it is recomputed and replaced atomically (safe for concurrent ranks).
    """
    session = session if isinstance(session, Session) else Session(session)
    settings = cones_settings(params)
    frames = session.stim(kind)  # raises a clear error for an unknown type
    source = session.path / session.meta["stim_types"][kind]["file"]
    stat = source.stat()
    key = {
        "params": settings,
        "source": source.name,
        "source_bytes": stat.st_size,
        "source_mtime_ns": stat.st_mtime_ns,
    }
    target = session.path / PREPROCESSED_DIR / f"cones_{source.name}"
    sidecar = target.with_suffix(".json")
    if target.is_file() and sidecar.is_file() and json.loads(sidecar.read_text()) == key:
        return np.load(target, mmap_mode="r")
    block = session.meta["stim_types"][kind]["start"]
    starts = [trial["start"] - block for trial in session.trials if trial["type"] == kind]
    adapted = adapt(frames, starts, float(session.meta["sampling_rate_hz"]), **settings)
    target.parent.mkdir(exist_ok=True)
    _atomic_write(target, adapted)  # the frames first: a matching sidecar always means matching frames
    _atomic_write(sidecar, json.dumps(key).encode())
    return np.load(target, mmap_mode="r")


def _atomic_write(path: Path, data: np.ndarray | bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        if isinstance(data, np.ndarray):
            np.save(handle, data)
        else:
            handle.write(data)
    temporary.replace(path)
