"""Generated sets: folder names and config hashes stay what earlier code wrote, so cached sets are found."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.design import store as design_store
from datamodules.design.store import DesignDataConfig
from datamodules.ukiyoe.store import PrintSetConfig


def test_the_default_configs_keep_their_cached_folders() -> None:
    # Pinned per generator version: a change here without a version bump orphans every cached set.
    design = DesignDataConfig(resolution=64, seed=0, num_train=4096, num_val=512, num_test=512)
    prints = PrintSetConfig(resolution=32, seed=0, num_train=2048, num_val=256, num_test=512)
    assert design.generator == ("visioncore.design.renderer", "2")
    assert design.config_hash == "cc8b06a5714d"
    assert design.folder("data") == Path("data/design/r64_seed0_cc8b06a5714d")
    assert prints.config_hash == "12997f7ec8e5"
    assert prints.folder("data") == Path("data/ukiyoe/r32_seed0_12997f7ec8e5")


def test_a_generator_version_bump_moves_the_set_to_a_new_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    design = DesignDataConfig(resolution=64, seed=0, num_train=4096, num_val=512, num_test=512)
    monkeypatch.setattr(design_store, "GENERATOR_VERSION", "1")
    assert design.config_hash == "eab4a9fa3a88"  # what version 1 wrote, so its folders are left, not reused
