"""The schedule of a simulated tier, cheap to compute: sessions, subjects, unit ids, trials and splits.

Everything here is drawn from seeded generators without simulating any data, so dataset configs can
be written (and shipped) without the arrays. Each random draw has its own generator seeded from
(seed, session index, purpose, ...), so changing one part of the simulator never reshuffles another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from datamodules.v1.simulator.tiers import Layout, SizeSpec, TierSpec, layout, size_spec, tier_spec

GENERATOR_NAME = "visioncore.v1.simulator"
GENERATOR_VERSION = "1.0"
SUBJECT_NAMES = "ABCDEFGH"
SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
FREE_TYPE_SHARES = {"gaborium": 0.40, "backimage": 0.35, "gratings": 0.25}  # of non-repeat trials
# One integer per purpose, so each draw has its own stream.
PURPOSES = {
    "unit_ids": 1,
    "units": 2,
    "split": 3,
    "gaze": 4,
    "blinks": 5,
    "stimulus": 6,
    "sequence": 7,
    "fixation": 8,
    "calibration": 9,
    "tracker": 10,
    "spikes": 11,
    "hidden": 12,
    "dropout": 13,
    "subject": 14,
    "unit_counts": 15,
}
SUBJECT_INDEX_BASE = 10_000  # subject-level generators use index 10_000 + subject


def generator(seed: int, index: int, purpose: str, *extra: int) -> np.random.Generator:
    """A numpy Generator for one purpose of one session (or subject), independent of all others."""
    return np.random.default_rng(np.random.SeedSequence([seed, index, PURPOSES[purpose], *extra]))


@dataclass(frozen=True)
class Trial:
    id: int
    type: str
    start: int  # timeline frames [start, stop)
    stop: int
    split: str
    repeat: int | None  # fixrsvp: index of the repeated sequence; else None

    @property
    def frames(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class SessionPlan:
    tier: TierSpec
    size: SizeSpec
    seed: int
    index: int  # global session index in the tier (pretrain first, then held-out)
    name: str
    subject: str
    subject_index: int
    part: str  # "pretrain" or "transfer"
    unit_ids: tuple[int, ...]
    trials: tuple[Trial, ...]

    @property
    def num_frames(self) -> int:
        return self.trials[-1].stop

    @property
    def num_units(self) -> int:
        return len(self.unit_ids)

    @property
    def blocks(self) -> dict[str, tuple[int, int]]:
        """Timeline rows [start, stop) of each stimulus type, in timeline order."""
        blocks: dict[str, tuple[int, int]] = {}
        for trial in self.trials:
            start, _ = blocks.get(trial.type, (trial.start, trial.stop))
            blocks[trial.type] = (start, trial.stop)
        return blocks

    def rng(self, purpose: str, *extra: int) -> np.random.Generator:
        return generator(self.seed, self.index, purpose, *extra)

    def subject_rng(self, purpose: str) -> np.random.Generator:
        return generator(self.seed, SUBJECT_INDEX_BASE + self.subject_index, purpose)

    def description(self) -> dict:
        """Everything that determines this session's arrays (hashed for the cache)."""
        return {
            "generator_version": GENERATOR_VERSION,
            "tier": asdict(self.tier),
            "size": asdict(self.size),
            "seed": self.seed,
            "index": self.index,
            "name": self.name,
            "subject": self.subject,
            "subject_index": self.subject_index,
            "unit_ids": list(self.unit_ids),
            "trials": [asdict(trial) for trial in self.trials],
        }

    @cached_property
    def config_hash(self) -> str:
        text = json.dumps(self.description(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TierPlan:
    tier: TierSpec
    size: SizeSpec
    seed: int
    sessions: tuple[SessionPlan, ...]

    @property
    def data_folder(self) -> str:
        """Folder of this tier's sessions, relative to data_dir."""
        return f"v1/{self.tier.name.lower()}_{self.size.name}_seed{self.seed}"

    def part(self, part: str) -> list[SessionPlan]:
        return [session for session in self.sessions if session.part == part]


def plan_tier(tier: str, size: str, seed: int = 0) -> TierPlan:
    """The full schedule of a tier at a size for a seed (no data simulated)."""
    tier_, size_ = tier_spec(tier), size_spec(size)
    shape = layout(tier_, size_)
    subjects = [s for s, count in enumerate(shape.sessions_per_subject) for _ in range(count)]
    parts = ["pretrain"] * len(subjects)
    if tier_.heldout:
        subjects += list(shape.heldout_subjects)
        parts += ["transfer"] * len(shape.heldout_subjects)
    unit_counts = _unit_counts(shape, len(subjects), generator(seed, 0, "unit_counts"))
    sessions, seen = [], {}
    for index, (subject, part, units) in enumerate(zip(subjects, parts, unit_counts, strict=True)):
        seen[subject] = seen.get(subject, 0) + 1
        subject_name = f"subj{SUBJECT_NAMES[subject]}"
        sessions.append(
            SessionPlan(
                tier=tier_,
                size=size_,
                seed=seed,
                index=index,
                name=f"{subject_name}_s{seen[subject]:02d}",
                subject=subject_name,
                subject_index=subject,
                part=part,
                unit_ids=_unit_ids(units, generator(seed, index, "unit_ids")),
                trials=_trials(tier_, size_, shape, generator(seed, index, "split")),
            )
        )
    return TierPlan(tier_, size_, seed, tuple(sessions))


def _unit_counts(shape: Layout, sessions: int, rng: np.random.Generator) -> list[int]:
    """Units per session spread evenly over the layout's range (so both ends occur), shuffled."""
    low, high = shape.units
    counts = np.round(np.linspace(low, high, sessions)).astype(int) if sessions > 1 else np.array([low])
    return [int(c) for c in rng.permutation(counts)]


def _unit_ids(count: int, rng: np.random.Generator) -> tuple[int, ...]:
    """Sorted distinct, non-contiguous ids, like spike-sorter cluster ids (code must not assume 0..N-1)."""
    return tuple(int(i) for i in np.sort(rng.choice(4 * count, size=count, replace=False)))


def _trials(tier: TierSpec, size: SizeSpec, shape: Layout, rng: np.random.Generator) -> tuple[Trial, ...]:
    """Trials grouped in stimulus-type blocks (the timeline order), each with its split."""
    repeats = size.fixrsvp_sequences * size.fixrsvp_repeats if "fixrsvp" in tier.stim_types else 0
    free_types = [kind for kind in tier.stim_types if kind != "fixrsvp"]
    free_trials = round((shape.frames - repeats * size.fixrsvp_frames) / size.trial_frames)
    counts = _free_counts(free_types, free_trials)
    trials: list[Trial] = []
    for kind in tier.stim_types:
        if kind == "fixrsvp":
            # Alternate val/test within each sequence, so both splits hold repeats of every sequence.
            specs = [
                (sequence, "val" if r % 2 == 0 else "test")
                for sequence in range(size.fixrsvp_sequences)
                for r in range(size.fixrsvp_repeats)
            ]
            length = size.fixrsvp_frames
        else:
            specs = [(None, split) for split in _splits(counts[kind], rng)]
            length = size.trial_frames
        for repeat, split in specs:
            start = trials[-1].stop if trials else 0
            trials.append(Trial(len(trials), kind, start, start + length, split, repeat))
    return tuple(trials)


def _free_counts(types: list[str], total: int) -> dict[str, int]:
    """Trials per non-repeat stimulus type by FREE_TYPE_SHARES; the last type takes the remainder."""
    if len(types) == 1:
        return {types[0]: total}
    shares = np.array([FREE_TYPE_SHARES[kind] for kind in types])
    counts = np.round(shares / shares.sum() * total).astype(int)
    counts[-1] = total - counts[:-1].sum()
    return dict(zip(types, (int(c) for c in counts), strict=True))


def _splits(count: int, rng: np.random.Generator) -> list[str]:
    """~70/15/15 train/val/test over `count` trials (at least one val and test trial from 3 on), shuffled."""
    val = max(1, round(count * SPLIT_FRACTIONS["val"])) if count >= 3 else 0
    test = max(1, round(count * SPLIT_FRACTIONS["test"])) if count >= 3 else 0
    labels = ["train"] * (count - val - test) + ["val"] * val + ["test"] * test
    return [str(label) for label in rng.permutation(labels)]
