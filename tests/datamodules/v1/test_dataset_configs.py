"""Dataset configs of the simulated datasets come from the tier definitions (no files in the repository), the
simulator writes the same files beside the sessions, a user's own folder is read as it is, and the path old
checkpoints name (the repository's former conf/v1_datasets/<name>) reads as the simulated dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from datamodules.v1 import MultiDatasetDM
from datamodules.v1.dataset_configs import (
    DatasetConfigError,
    SessionConfig,
    load_dataset_configs,
    simulated_name,
    write_dataset_configs,
)
from datamodules.v1.resolvers import dataset_fact
from datamodules.v1.simulator import plan_tier, write_configs
from datamodules.v1.simulator.configs import dataset_names

# The hash of every dataset-config folder the repository shipped in conf/v1_datasets/ before the configs
# were computed from the tier definitions: old checkpoints recorded these, the computed ones must match.
SHIPPED_HASHES = {
    "t0_full": "e4b11b9e26f0884e",
    "t0_small": "4efb44d8c07a71ae",
    "t0_tiny": "053d5412d1f87891",
    "t1_full": "fedd6d55a11273fa",
    "t1_small": "6d3f1fb5203b0925",
    "t1_tiny": "651245db8208209e",
    "t2_full": "6104c0238adede2c",
    "t2_small": "40d4cc0024d920d8",
    "t2_tiny": "8b8e4177721a0cb2",
    "t3_full_pretrain": "5513684c0faa5536",
    "t3_full_transfer": "5740674e556f75ec",
    "t3_small_pretrain": "05bb79a3d64d1aba",
    "t3_small_transfer": "03507ef8c378b9fb",
    "t3_tiny_pretrain": "b009f6f193b4f588",
    "t3_tiny_transfer": "6933e9a01796a0f4",
}
OLD_CHECKOUT = "/home/someone/VisionCore/conf/v1_datasets"  # what an old checkpoint's stored config names


def test_every_simulated_dataset_is_computed_as_the_repository_shipped_it():
    assert set(dataset_names()) == set(SHIPPED_HASHES)
    for name, shipped in SHIPPED_HASHES.items():
        configs = load_dataset_configs(dataset=name)
        assert (configs.hash, configs.dataset) == (shipped, name), name
    small = load_dataset_configs(dataset="t1_small")
    assert len(small.sessions) == 6 and [s.subject for s in small.sessions].count("subjA") == 3
    assert min(s.num_units for s in small.sessions) == 25 and max(s.num_units for s in small.sessions) == 60
    assert (small.lags, small.frame_shape) == (8, (32, 32))
    assert load_dataset_configs(dataset="t1_small_seed3").hash != small.hash  # another seed, other units


def test_the_simulator_writes_the_computed_configs(tmp_path):
    for tier in ("T1", "T3"):
        for folder in write_configs(plan_tier(tier, "small", 0), tmp_path):
            written, computed = load_dataset_configs(folder), load_dataset_configs(dataset=folder.name)
            assert (written.hash, written.parent, written.sessions) == (
                computed.hash,
                computed.parent,
                computed.sessions,
            )
            assert written.dataset is None  # a folder is read as it is


def test_a_computed_dataset_lives_where_the_simulator_writes_it(tmp_path):
    configs = load_dataset_configs(dataset="t0_tiny", data_dir=tmp_path)
    assert configs.path == tmp_path / "v1" / "dataset_configs" / "t0_tiny"
    assert configs.where == "the simulated dataset t0_tiny"


def test_a_stale_conf_v1_datasets_path_reads_as_the_simulated_dataset(tmp_path):
    stale = f"{OLD_CHECKOUT}/t3_tiny_transfer"
    assert simulated_name(stale) == "t3_tiny_transfer"
    configs = load_dataset_configs(stale, data_dir=tmp_path)
    assert configs.hash == SHIPPED_HASHES["t3_tiny_transfer"] and configs.dataset == "t3_tiny_transfer"
    assert configs.path == tmp_path / "v1" / "dataset_configs" / "t3_tiny_transfer"  # the generated location
    dm = MultiDatasetDM(stale, str(tmp_path))
    assert dm.session_names == load_dataset_configs(dataset="t3_tiny_transfer").session_names
    assert dataset_fact(stale, None, "lags") == 8
    # The generated location before the simulator wrote it stands for the same dataset.
    assert simulated_name(tmp_path / "v1" / "dataset_configs" / "t1_tiny") == "t1_tiny"


def test_other_paths_without_parent_yaml_stay_an_error(tmp_path):
    for path in (tmp_path / "mine", f"{OLD_CHECKOUT}/t9_tiny", tmp_path / "v1" / "dataset_configs" / "mine"):
        assert simulated_name(path) is None
        with pytest.raises(DatasetConfigError, match=r"data\.dataset_configs_path=.*holds no parent\.yaml"):
            load_dataset_configs(path)
    with pytest.raises(
        DatasetConfigError, match=r"dataset=t9_tiny .*did you mean t2_tiny.*dataset_configs_path"
    ):
        load_dataset_configs(dataset="t9_tiny")
    with pytest.raises(DatasetConfigError, match=r"v1\.dataset.*data\.dataset_configs_path"):
        load_dataset_configs()


def test_a_users_folder_wins_over_the_dataset_name(tmp_path):
    parent = {"types": ["gaborium"], "sampling": {"rate_hz": 30.0}, "lags": 5, "frame_shape": [9, 9]}
    sessions = [SessionConfig("m1", "mylab/m1", (3, 4), "m")]
    # even one that sits where the simulator writes (its parent.yaml is read, not the tier definition)
    folder = write_dataset_configs(tmp_path / "v1" / "dataset_configs" / "t1_tiny", parent, sessions)
    configs = load_dataset_configs(folder, dataset="t0_small")
    assert (configs.session_names, configs.lags, configs.dataset) == (["m1"], 5, None)
    assert dataset_fact(str(folder), "t0_small", "frame_shape") == [9, 9]
    assert dataset_fact(None, "t0_small", "frame_shape") == [32, 32]
    with pytest.raises(KeyError, match="has no `colour`"):
        dataset_fact(str(folder), None, "colour")


def test_the_resolver_is_registered_by_the_plugin_module():
    cfg = OmegaConf.create(
        {
            "data": {"dataset": "t1_tiny", "dataset_configs_path": None},
            "lags": "${v1.dataset_fact:${data.dataset_configs_path},${data.dataset},lags}",
        }
    )
    assert OmegaConf.has_resolver("v1.dataset_fact") and cfg.lags == 8


def test_configs_are_written_whole(tmp_path):
    """Each file is replaced atomically, so a concurrent reader (another job) never sees half of one."""
    folder = write_configs(plan_tier("T1", "tiny", 0), tmp_path)[0]
    assert sorted(p.name for p in folder.iterdir()) == ["parent.yaml", "subjA_s01.yaml", "subjB_s01.yaml"]
    assert load_dataset_configs(Path(folder)).hash == SHIPPED_HASHES["t1_tiny"]
