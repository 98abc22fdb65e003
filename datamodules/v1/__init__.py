"""The v1 system's data: session format, dataset configs, simulator, datamodule."""

from datamodules.v1.datamodule import MultiDatasetDM
from datamodules.v1.samplers import ContrastWeightedSampler
from datamodules.v1.windows import group_collate

__all__ = ["ContrastWeightedSampler", "MultiDatasetDM", "group_collate"]
