"""Generated sets: folder names and config hashes stay what earlier code wrote, so cached sets are found."""

from __future__ import annotations

from pathlib import Path

from datamodules.design.store import DesignDataConfig
from datamodules.ukiyoe.store import PrintSetConfig


def test_the_default_configs_keep_their_cached_folders() -> None:
    # Pinned from the stores before they shared generated_set.py: a change here orphans every cached set.
    design = DesignDataConfig(resolution=64, seed=0, num_train=4096, num_val=512, num_test=512)
    prints = PrintSetConfig(resolution=32, seed=0, num_train=2048, num_val=256, num_test=512)
    assert design.config_hash == "eab4a9fa3a88"
    assert design.folder("data") == Path("data/design/r64_seed0_eab4a9fa3a88")
    assert prints.config_hash == "12997f7ec8e5"
    assert prints.folder("data") == Path("data/ukiyoe/r32_seed0_12997f7ec8e5")
