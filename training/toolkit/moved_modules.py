"""Stored configs name code by dotted path (`_target_`); when a module moves, old checkpoints keep working.

A package that moves a module lists it in its own `__init__.py` as `MOVED_MODULES = {old: new}` (dotted
module paths). `upgrade_targets` rewrites a stored config's `_target_`s whose module no longer exists,
asking the nearest existing package above it: no system is named here, each one records its own moves.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that is not a package, or no longer exists
        return False


def moved_module(module: str) -> str | None:
    """Where `module` lives now, per the `MOVED_MODULES` of the packages above it (None: not moved)."""
    parts = module.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        package = ".".join(parts[:depth])
        if not _exists(package):
            continue
        moved = getattr(importlib.import_module(package), "MOVED_MODULES", {})
        for old, new in moved.items():
            if module == old or module.startswith(old + "."):
                return new + module[len(old) :]
        return None
    return None


def upgrade_target(target: str) -> str:
    """`target` (module.attribute) under the module's current path; unchanged when it still exists."""
    module, _, attribute = target.rpartition(".")
    if not module or _exists(module):
        return target
    new = moved_module(module)
    return f"{new}.{attribute}" if new else target


def upgrade_targets(config: Any) -> Any:
    """A copy of a stored config (plain containers) with every moved `_target_` rewritten."""
    if isinstance(config, Mapping):
        return {
            key: upgrade_target(value)
            if key == "_target_" and isinstance(value, str)
            else upgrade_targets(value)
            for key, value in config.items()
        }
    if isinstance(config, list | tuple):
        return [upgrade_targets(item) for item in config]
    return config
