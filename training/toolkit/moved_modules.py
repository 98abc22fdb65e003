"""Stored configs name code by dotted path (`_target_`); when code moves, old checkpoints keep working.

A package that moves or renames code lists it in its own `__init__.py` as `MOVED = {old: new}`, dotted
paths of modules or of attributes (`models.x.old_module` or `models.x.module.OldName`). `upgrade_targets`
rewrites a stored config's `_target_`s that no longer resolve, asking the packages above each one: no
system is named here, each records its own moves.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any


def _module(name: str) -> Any | None:
    """The imported module `name`, or None when there is no such module (nothing is imported then)."""
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except (ImportError, ValueError):  # a parent that is not a package, or no longer exists
        return None
    return importlib.import_module(name)


def _resolves(target: str) -> bool:
    module, _, attribute = target.rpartition(".")
    found = _module(module) if module else None
    return found is not None and hasattr(found, attribute)


def moved_path(path: str) -> str | None:
    """Where `path` lives now, per the `MOVED` tables of the existing packages above it (None: not moved)."""
    parts = path.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        package = _module(".".join(parts[:depth]))
        for old, new in sorted(getattr(package, "MOVED", {}).items(), key=lambda item: -len(item[0])):
            if path == old or path.startswith(old + "."):
                return new + path[len(old) :]
    return None


def upgrade_target(target: str) -> str:
    """`target` under its current path; unchanged when it still resolves or no package recorded a move."""
    if _resolves(target):
        return target
    return moved_path(target) or target


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
