"""Shards: the same bytes as rendering on the fly, cached by config, written atomically."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from datamodules.design import __main__ as cli
from datamodules.design import store
from datamodules.design.dataset import DesignDataset
from datamodules.design.store import META_FILE, DesignDataConfig, generate
from training.toolkit.errors import UserError

CONFIG = DesignDataConfig(resolution=32, seed=5, num_train=7, num_val=3, num_test=2)


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards of 4 samples rendered in chunks of 2, so a tiny split spans several shard files."""
    monkeypatch.setattr(store, "SHARD_SIZE", 4)
    monkeypatch.setattr(store, "CHUNK", 2)


def _same(first: dict, second: dict) -> bool:
    return all(torch.equal(first[key], second[key]) for key in first)


def test_shards_hold_the_on_the_fly_bytes(tmp_path, small_shards) -> None:
    folder = generate(CONFIG, tmp_path)
    assert folder == CONFIG.folder(tmp_path)
    assert len(list((folder / "train").glob("images_*.npy"))) == 2  # 7 samples in shards of 4
    for split in ("train", "val", "test"):
        shards = DesignDataset(CONFIG, split, "shards", tmp_path)
        fly = DesignDataset(CONFIG, split, "on_the_fly")
        memory = DesignDataset(CONFIG, split, "memory")
        assert len(shards) == len(fly) == CONFIG.count(split)
        for i in range(len(fly)):
            assert _same(shards[i], fly[i]) and _same(memory[i], fly[i])


def test_a_second_generate_is_a_no_op(tmp_path, small_shards, monkeypatch) -> None:
    folder = generate(CONFIG, tmp_path)
    written = (folder / META_FILE).stat().st_mtime_ns

    def must_not_render(*args, **kwargs):
        raise AssertionError("a cached dataset was rendered again")

    monkeypatch.setattr(store, "render_design", must_not_render)
    assert generate(CONFIG, tmp_path) == folder
    assert (folder / META_FILE).stat().st_mtime_ns == written


def test_an_interrupted_generate_leaves_nothing_behind(tmp_path, small_shards, monkeypatch) -> None:
    def crash(job):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_render_chunk", crash)
    with pytest.raises(KeyboardInterrupt):
        generate(CONFIG, tmp_path)
    assert list((tmp_path / "design").iterdir()) == []


def test_an_incomplete_or_outdated_folder_is_rendered_again(tmp_path, small_shards) -> None:
    folder = CONFIG.folder(tmp_path)
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "images_0000.npy").write_bytes(b"half a file")  # no meta.json: interrupted
    generate(CONFIG, tmp_path)
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["splits"]["train"]["count"] == 7
    meta["generator"]["version"] = "0"
    (folder / META_FILE).write_text(json.dumps(meta))
    assert not store.is_complete(folder, CONFIG)
    generate(CONFIG, tmp_path)
    assert store.is_complete(folder, CONFIG)


def test_reading_missing_shards_names_the_fix(tmp_path) -> None:
    with pytest.raises(UserError, match="python -m datamodules.design generate"):
        DesignDataset(CONFIG, "train", "shards", tmp_path)


def test_cli_generate_writes_the_folder_and_rejects_bad_arguments(tmp_path, small_shards, capsys) -> None:
    argv = [
        "generate",
        f"out={tmp_path}",
        "resolution=32",
        "num_train=7",
        "num_val=3",
        "num_test=2",
        "seed=5",
    ]
    assert cli.main(argv) == 0
    assert store.is_complete(CONFIG.folder(tmp_path), CONFIG)
    reader = store.ShardReader(CONFIG.folder(tmp_path), "val")
    assert np.array_equal(reader.sample(2)["image"], DesignDataset(CONFIG, "val").arrays(2)["image"])
    assert cli.main(["generate", f"out={tmp_path}", "resolution=big"]) == 2
    assert cli.main(["generate", f"out={tmp_path}", "colour=red"]) == 2
    assert "resolution='big'" in capsys.readouterr().err


@pytest.mark.slow
def test_worker_processes_write_the_same_bytes(tmp_path) -> None:
    config = DesignDataConfig(
        resolution=32, seed=5, num_train=store.CHUNK + 12, num_val=0, num_test=0
    )  # 2 jobs
    serial, parallel = generate(config, tmp_path / "one"), generate(config, tmp_path / "two", workers=2)
    for name in ("images_0000.npy", "structure_0000.npy", "grammar.npy", "goal.npy"):
        assert (serial / "train" / name).read_bytes() == (parallel / "train" / name).read_bytes()
