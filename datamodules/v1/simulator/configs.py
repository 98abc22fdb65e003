"""Dataset configs (parent.yaml + one YAML per session) of a simulated tier, computed from its plan alone.

Folder names are lower-case `<tier>_<size>` (`_seed<k>` for seeds other than 0); T3 has two folders,
`..._pretrain` and `..._transfer` (the held-out sessions). Session paths are relative to data_dir.
A name alone gives the configs (`simulated_dataset`), so an experiment names only its tier and size
(`v1.dataset`); the simulator also writes them beside the sessions (`<data_dir>/v1/dataset_configs/`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from datamodules.v1.dataset_configs import SessionConfig, write_dataset_configs
from datamodules.v1.simulator.plan import TierPlan, plan_tier
from datamodules.v1.simulator.tiers import SIZES, TIERS
from datamodules.v1.simulator.units import MEAN_RATE_RANGE_HZ

NAME = re.compile(r"(?P<tier>t\d+)_(?P<size>[a-z]+)(?:_seed(?P<seed>[1-9]\d*))?(?:_(?P<part>[a-z]+))?")

BEHAVIOR_NAMES = ["running_speed"]


def config_name(plan: TierPlan, part: str | None = None) -> str:
    name = f"{plan.tier.name.lower()}_{plan.size.name}"
    name += f"_seed{plan.seed}" if plan.seed else ""
    return name + (f"_{part}" if part else "")


def dataset_configs(plan: TierPlan) -> dict[str, tuple[dict[str, Any], list[SessionConfig]]]:
    """{folder name: (parent dict, session configs)} for every dataset-config folder of the tier."""
    tier, size = plan.tier, plan.size
    parent = {
        "types": list(tier.stim_types),
        "sampling": {"rate_hz": size.rate_hz},
        "lags": size.lags,
        "frame_shape": [size.frame_px, size.frame_px],
        "pixels_per_degree": size.pixels_per_degree,
        "behavior": BEHAVIOR_NAMES if tier.hidden_gain else [],
        "transforms": {"cones": False},
        # Applied by the simulator (nothing is left for the datamodule to drop): mean rates are drawn
        # inside this range, and dfs already masks these frames/units.
        "filters": {
            "min_mean_rate_hz": MEAN_RATE_RANGE_HZ[0],
            "max_mean_rate_hz": MEAN_RATE_RANGE_HZ[1],
            "invalid_frames_after_trial_start": size.lags - 1,
            "blinks_masked": tier.blinks,
            "sorting_dropout_masked": tier.dropout,
        },
        "split": {"train": "train", "val": "val", "test": "test"},
        "simulate": {"tier": tier.name, "size": size.name, "seed": plan.seed},
    }
    parts = ["pretrain", "transfer"] if tier.heldout else [None]
    out = {}
    for part in parts:
        sessions = [
            SessionConfig(s.name, f"{plan.data_folder}/{s.name}", s.unit_ids, s.subject)
            for s in plan.part(part or "pretrain")
        ]
        out[config_name(plan, part)] = (parent, sessions)
    return out


def write_configs(plan: TierPlan, configs_dir: str | os.PathLike) -> list[Path]:
    """Write every dataset-config folder of the tier under `configs_dir`; returns the folders."""
    return [
        write_dataset_configs(Path(configs_dir) / name, parent, sessions)
        for name, (parent, sessions) in dataset_configs(plan).items()
    ]


def dataset_names(seed: int = 0) -> list[str]:
    """Every simulated dataset's folder name at `seed` (what `v1.dataset` may name), e.g. `t1_small`."""
    names = []
    for tier, spec in TIERS.items():
        for size in SIZES:
            base = f"{tier.lower()}_{size}" + (f"_seed{seed}" if seed else "")
            names += [f"{base}_{part}" for part in ("pretrain", "transfer")] if spec.heldout else [base]
    return names


def simulated_dataset(name: str) -> tuple[dict[str, Any], list[SessionConfig]] | None:
    """(parent dict, session configs) of the simulated dataset `name` (e.g. `t3_small_transfer`), computed
    from the tier definitions without simulating anything; None when `name` is no simulated dataset."""
    match = NAME.fullmatch(str(name))
    if match is None or match["tier"].upper() not in TIERS or match["size"] not in SIZES:
        return None
    plan = plan_tier(match["tier"], match["size"], int(match["seed"] or 0))
    return dataset_configs(plan).get(name)
