"""The v1 system's data: session format, dataset configs, simulator, datamodule.

The exports load lazily, so `python -m datamodules.v1 simulate ...` starts without torch/Lightning.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "MultiDatasetDM": "datamodules.v1.datamodule",
    "ContrastWeightedSampler": "datamodules.v1.samplers",
    "group_collate": "datamodules.v1.windows",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'datamodules.v1' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
