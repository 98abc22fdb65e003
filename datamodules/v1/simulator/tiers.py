"""What each simulator tier switches on (`TIERS`) and how big each size is (`SIZES`).

Tiers (spec): T0 = 1 session, simple cells, perfect gaze, gaborium. T1 = several sessions over
deliberately imbalanced subjects, all cell and stimulus types, perfect gaze (blinks masked).
T2 = T1 + calibration error, saccade gain, contrast normalisation, hidden slow shared gain (with a
behaviour proxy) and sorting dropout. T3 = T2 + held-out sessions for transfer.

Sizes (chosen to fit compute; trials split ~70/15/15 by trial, fixrsvp repeats to val/test only):
- `tiny` (tests; a tier simulates in well under a second): 60 Hz, lags 8, 16x16 px at 16 px/deg
  (1 deg), 1-s trials, 600 frames per session. T0: 1 session of 10 units. T1/T2: 2 sessions
  (subjects 1/1) of 8-12 units; T3 adds 1 held-out session of a new subject. fixrsvp: 1 sequence of
  0.5 s x 4 repeats.
- `small` (trains on 2 CPU cores in ~10 min): 60 Hz, lags 8, 32x32 px at 16 px/deg (2 deg), 4-s
  trials. T0: 1 session, 30 units, 24,000 frames. T1/T2: 6 sessions over 3 subjects (3/2/1), 25-60
  units, 12,000 frames each; T3 adds 2 held-out sessions (subject A and a new subject D).
  fixrsvp: 1 sequence of 2 s x 12 repeats.
- `full` (GPUs): 120 Hz, lags 16, 64x64 px at 32 px/deg (the same 2 deg at twice the resolution),
  4-s trials. T0: 1 session, 120 units, 99,840 frames. T1/T2: 20 sessions over 4 subjects
  (9/6/3/2), 25-180 units, 99,840 frames each; T3 adds 4 held-out sessions (subjects A, B and two of
  a new subject E). fixrsvp: 2 sequences of 2 s x 15 repeats.
Mean rates are lognormal around 7 Hz (clipped to 1.5-40 Hz) at every size.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.toolkit.errors import UserError

ALL_STIM_TYPES = ("gaborium", "backimage", "gratings", "fixrsvp")
CELL_TYPES = ("simple", "complex", "other")


@dataclass(frozen=True)
class TierSpec:
    name: str
    stim_types: tuple[str, ...]
    cell_mix: tuple[float, float, float]  # fractions of CELL_TYPES
    calibration_error: bool  # measured gaze = true + smooth field + tracker noise
    blinks: bool
    saccade_gain: bool
    normalisation: bool  # divisive contrast normalisation
    hidden_gain: bool  # slow shared gain + behaviour proxy
    dropout: bool  # per-unit sorting-dropout blocks
    multi_session: bool
    heldout: bool  # extra sessions for transfer


@dataclass(frozen=True)
class Layout:
    """Sessions of one tier at one size: sessions per subject, units per session, frames per session."""

    sessions_per_subject: tuple[int, ...]
    units: tuple[int, int]  # min, max over sessions
    frames: int  # target frames per session (rounded to whole trials)
    heldout_subjects: tuple[int, ...] = ()  # subject index of each held-out session (T3)


@dataclass(frozen=True)
class SizeSpec:
    name: str
    rate_hz: float
    lags: int
    frame_px: int
    pixels_per_degree: float
    trial_s: float
    fixrsvp_trial_s: float
    fixrsvp_sequences: int
    fixrsvp_repeats: int
    gaze_range_deg: float  # true gaze stays within +-range on both axes
    rf_cluster_deg: float  # scatter of receptive-field centres around the session's cluster centre
    single: Layout  # T0
    multi: Layout  # T1-T3

    @property
    def trial_frames(self) -> int:
        return round(self.trial_s * self.rate_hz)

    @property
    def fixrsvp_frames(self) -> int:
        return round(self.fixrsvp_trial_s * self.rate_hz)


_FEATURES_OFF = dict(
    calibration_error=False, saccade_gain=False, normalisation=False, hidden_gain=False, dropout=False
)
_FEATURES_ON = {key: True for key in _FEATURES_OFF}

TIERS: dict[str, TierSpec] = {
    "T0": TierSpec(
        "T0",
        ("gaborium",),
        (1.0, 0.0, 0.0),
        blinks=False,
        multi_session=False,
        heldout=False,
        **_FEATURES_OFF,
    ),
    "T1": TierSpec(
        "T1",
        ALL_STIM_TYPES,
        (0.35, 0.5, 0.15),
        blinks=True,
        multi_session=True,
        heldout=False,
        **_FEATURES_OFF,
    ),
    "T2": TierSpec(
        "T2",
        ALL_STIM_TYPES,
        (0.35, 0.5, 0.15),
        blinks=True,
        multi_session=True,
        heldout=False,
        **_FEATURES_ON,
    ),
    "T3": TierSpec(
        "T3", ALL_STIM_TYPES, (0.35, 0.5, 0.15), blinks=True, multi_session=True, heldout=True, **_FEATURES_ON
    ),
}

SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(
        "tiny",
        rate_hz=60.0,
        lags=8,
        frame_px=16,
        pixels_per_degree=16.0,
        trial_s=1.0,
        fixrsvp_trial_s=0.5,
        fixrsvp_sequences=1,
        fixrsvp_repeats=4,
        gaze_range_deg=0.4,
        rf_cluster_deg=0.08,
        single=Layout((1,), (10, 10), 600),
        multi=Layout((1, 1), (8, 12), 600, heldout_subjects=(2,)),
    ),
    "small": SizeSpec(
        "small",
        rate_hz=60.0,
        lags=8,
        frame_px=32,
        pixels_per_degree=16.0,
        trial_s=4.0,
        fixrsvp_trial_s=2.0,
        fixrsvp_sequences=1,
        fixrsvp_repeats=12,
        gaze_range_deg=0.8,
        rf_cluster_deg=0.12,
        single=Layout((1,), (30, 30), 24_000),
        multi=Layout((3, 2, 1), (25, 60), 12_000, heldout_subjects=(0, 3)),
    ),
    "full": SizeSpec(
        "full",
        rate_hz=120.0,
        lags=16,
        frame_px=64,
        pixels_per_degree=32.0,
        trial_s=4.0,
        fixrsvp_trial_s=2.0,
        fixrsvp_sequences=2,
        fixrsvp_repeats=15,
        gaze_range_deg=0.8,
        rf_cluster_deg=0.12,
        single=Layout((1,), (120, 120), 100_000),
        multi=Layout((9, 6, 3, 2), (25, 180), 100_000, heldout_subjects=(0, 1, 4, 4)),
    ),
}


def tier_spec(name: str) -> TierSpec:
    """The tier called `name` (case-insensitive), or a UserError listing the valid tiers."""
    key = str(name).upper()
    if key not in TIERS:
        raise UserError(f"Unknown simulator tier={name!r}; valid tiers: {', '.join(TIERS)}.")
    return TIERS[key]


def size_spec(name: str) -> SizeSpec:
    """The size called `name` (case-insensitive), or a UserError listing the valid sizes."""
    key = str(name).lower()
    if key not in SIZES:
        raise UserError(f"Unknown simulator size={name!r}; valid sizes: {', '.join(SIZES)}.")
    return SIZES[key]


def layout(tier: TierSpec, size: SizeSpec) -> Layout:
    return size.multi if tier.multi_session else size.single
