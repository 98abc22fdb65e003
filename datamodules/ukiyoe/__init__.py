"""The `ukiyoe` system's data: procedural woodblock-style prints (or a user's ImageFolder) and the DataModule.

Names are imported lazily, so the print generator (and `python -m datamodules.ukiyoe`) load without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "UkiyoeDataModule": "datamodules.ukiyoe.datamodule",
    "PIGMENTS": "datamodules.ukiyoe.procedural",
    "SCENES": "datamodules.ukiyoe.procedural",
    "render_print": "datamodules.ukiyoe.procedural",
    "PrintSetConfig": "datamodules.ukiyoe.store",
    "generate": "datamodules.ukiyoe.store",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'datamodules.ukiyoe' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
