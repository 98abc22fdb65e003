"""The v1 configs' OmegaConf resolvers, registered when this module is imported: the v1 experiments list it
under `plugins` (conf/experiment/_v1_common.yaml), so the runner imports it before the config resolves.

`${v1.dataset_fact:${data.dataset_configs_path},${data.dataset},KEY}`: a value of the dataset configs'
parent.yaml (e.g. `lags`, `frame_shape`), so the model configs follow the data. From the folder
`data.dataset_configs_path` when it is set, else computed for the simulated dataset `data.dataset` (e.g.
`t1_small`) from the simulator's tier definitions, with nothing read or written.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from datamodules.v1.dataset_configs import PARENT_FILE, dataset_parent

DATASET_FACT = "v1.dataset_fact"


def dataset_fact(dataset_configs_path: str | None, dataset: str | None, key: str) -> Any:
    """`key` of the parent.yaml of the folder `dataset_configs_path`, or else of the simulated `dataset`."""
    parent = dataset_parent(dataset_configs_path, dataset)
    if key not in parent:
        where = dataset_configs_path or f"the simulated dataset {dataset}"
        raise KeyError(f"{PARENT_FILE} of {where} has no `{key}` (it has {sorted(parent)}).")
    return parent[key]


def register() -> None:
    """Register the resolvers (safe to call more than once)."""
    if not OmegaConf.has_resolver(DATASET_FACT):
        OmegaConf.register_new_resolver(DATASET_FACT, dataset_fact)


register()
