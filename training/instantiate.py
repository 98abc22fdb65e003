"""Build callbacks and loggers from their config groups (one entry per key, `null` disables)."""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig


def instantiate_collection(group: DictConfig | None, group_name: str) -> list[Any]:
    """Instantiate every `_target_` entry of a callbacks/logger group, in config order."""
    if not group:
        return []
    if not isinstance(group, DictConfig):
        raise TypeError(f"`{group_name}` must be a mapping of name -> config, got {type(group).__name__}")
    built = []
    for key, conf in group.items():
        if conf is None:
            continue
        if not isinstance(conf, DictConfig) or "_target_" not in conf:
            raise ValueError(
                f"`{group_name}.{key}` has no `_target_`; set one or disable it with `{group_name}.{key}=null`"
            )
        built.append(hydra.utils.instantiate(conf))
    return built
