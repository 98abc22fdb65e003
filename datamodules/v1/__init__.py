"""The v1 system's data: session format, dataset configs, simulator, datamodule, and the configs' resolvers
(`resolvers.py`, listed under `plugins` by the v1 experiments).

The exports load lazily, so `python -m datamodules.v1 simulate ...` starts without torch/Lightning.
"""

from datamodules.lazy import lazy_exports

_EXPORTS = {
    "MultiDatasetDM": "datamodules.v1.datamodule",
    "ContrastWeightedSampler": "datamodules.v1.samplers",
    "group_collate": "datamodules.v1.windows",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
