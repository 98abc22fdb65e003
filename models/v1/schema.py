"""What the v1 models read from the data side: the batch layout, a session's view, ground-truth item names.

The datamodules (datamodules/v1) produce these and may import this module; the models import no data code
for them. Plain Python: no torch, no Lightning.

A batch is `{session: {...}}` in the dataset configs' session order, each session's entry holding
`stim` (B, L, H, W) float (normalised on the device), `robs` (B, N) counts, `dfs` (B, N) validity,
`eyepos` (B, L, 2) measured gaze in degrees, optionally `behavior` (B, D), and in evaluation batches
`trial`, `frame` and, for simulated sessions, the true rates `rates` and `achievable` (B, N).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

# Ground-truth items of a simulated session (`<session>/truth/<item>.{npy,json,npz}`) that the models read.
TRUTH_UNITS = "units"  # one record per unit: id, cell_type, center_deg, ... (units.json)
TRUTH_CALIBRATION = "calibration"  # measured - true gaze on a grid: grid_x, grid_y, field (calibration.npz)


class SessionView(Protocol):
    """The parts of an open recording session (datamodules.v1.session.Session) that plots and summaries use."""

    meta: Mapping[str, Any]  # meta.json: pixels_per_degree, frame_shape, unit_ids, ...

    @property
    def name(self) -> str: ...

    @property
    def frame_shape(self) -> tuple[int, int]: ...

    @property
    def unit_ids(self) -> Sequence[int]: ...

    @property
    def eyepos(self) -> Any: ...  # (T, 2) measured gaze, degrees

    def has_truth_item(self, name: str) -> bool: ...

    def truth(self, name: str) -> Any: ...
