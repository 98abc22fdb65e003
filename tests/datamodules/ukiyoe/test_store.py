"""The procedural print set on disk: ImageFolder layout with render_print's bytes, cached, written atomically."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import ImageFolder

from datamodules.ukiyoe import __main__ as cli
from datamodules.ukiyoe import store
from datamodules.ukiyoe.procedural import SCENES, render_print
from datamodules.ukiyoe.store import META_FILE, PrintSetConfig, generate, read_meta
from training.toolkit.errors import UserError

CONFIG = PrintSetConfig(resolution=16, seed=5, num_train=9, num_val=4, num_test=4)


def test_the_folder_is_an_image_folder_of_render_print_bytes(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(store, "CHUNK", 4)  # several jobs per split
    folder = generate(CONFIG, tmp_path)
    assert folder == CONFIG.folder(tmp_path) and folder.parent == tmp_path / "ukiyoe"
    assert read_meta(folder)["splits"] == {"train": 9, "val": 4, "test": 4}
    for split in ("train", "val", "test"):
        images = ImageFolder(str(folder / split))
        assert images.classes == sorted(SCENES) and len(images) == CONFIG.count(split)
    for split, index in (("train", 0), ("train", 8), ("test", 3)):
        expected, label = render_print(index, 16, seed=5, split=split)
        path = folder / split / SCENES[label] / f"{index:06d}.png"
        assert np.array_equal(np.asarray(Image.open(path)), expected)


def test_a_second_generate_writes_nothing(tmp_path, monkeypatch) -> None:
    folder = generate(CONFIG, tmp_path)
    written = (folder / META_FILE).stat().st_mtime_ns

    def must_not_render(*args, **kwargs):
        raise AssertionError("a cached print set was rendered again")

    monkeypatch.setattr(store, "render_print", must_not_render)
    assert generate(CONFIG, tmp_path) == folder
    assert (folder / META_FILE).stat().st_mtime_ns == written
    assert (
        cli.main(
            [
                "generate",
                f"data_dir={tmp_path}",
                "resolution=16",
                "seed=5",
                "num_train=9",
                "num_val=4",
                "num_test=4",
            ]
        )
        == 0
    )


def test_an_interrupted_generate_leaves_nothing_behind(tmp_path, monkeypatch) -> None:
    def crash(job):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_render_chunk", crash)
    with pytest.raises(KeyboardInterrupt):
        generate(CONFIG, tmp_path)
    assert list((tmp_path / "ukiyoe").iterdir()) == []


def test_the_completion_marker_is_written_after_every_image(tmp_path) -> None:
    folder = generate(CONFIG, tmp_path)
    marker = (folder / META_FILE).stat().st_mtime_ns
    assert all(path.stat().st_mtime_ns <= marker for path in folder.rglob("*.png"))


def test_an_incomplete_or_outdated_folder_is_rebuilt(tmp_path, monkeypatch) -> None:
    folder = CONFIG.folder(tmp_path)
    (folder / "train").mkdir(parents=True)  # an interrupted copy without meta.json
    with pytest.raises(UserError, match="python -m datamodules.ukiyoe generate"):
        read_meta(folder)
    generate(CONFIG, tmp_path)
    assert read_meta(folder)["config"]["num_train"] == 9
    monkeypatch.setattr(store, "GENERATOR_VERSION", "next")
    assert not store.is_complete(folder, CONFIG)


def test_the_config_hash_depends_on_every_field() -> None:
    other = [PrintSetConfig(16, 5, 9, 4, 5), PrintSetConfig(16, 6, 9, 4, 4), PrintSetConfig(32, 5, 9, 4, 4)]
    assert len({CONFIG.config_hash, *(c.config_hash for c in other)}) == 4


def test_the_command_line_names_bad_arguments(capsys) -> None:
    assert cli.main(["generate", "resolution=32"]) == 2
    assert "needs data_dir=" in capsys.readouterr().err
    assert cli.main(["generate", "data_dir=x", "resolutoin=32"]) == 2
    assert "resolutoin=32" in capsys.readouterr().err
    assert cli.main(["generate", "data_dir=x", "resolution=4"]) == 2
    assert "resolution='4'" in capsys.readouterr().err
