"""Simulated V1 populations written in the real session format (see tiers.py for tiers and sizes)."""

from datamodules.v1.simulator.configs import config_name, dataset_configs, write_configs
from datamodules.v1.simulator.plan import GENERATOR_VERSION, plan_tier
from datamodules.v1.simulator.simulate import default_data_dir, simulate_tier
from datamodules.v1.simulator.tiers import SIZES, TIERS

SIMULATOR_VERSION = GENERATOR_VERSION  # the name checkpoints record

__all__ = [
    "GENERATOR_VERSION",
    "SIMULATOR_VERSION",
    "SIZES",
    "TIERS",
    "config_name",
    "dataset_configs",
    "default_data_dir",
    "plan_tier",
    "simulate_tier",
    "write_configs",
]
