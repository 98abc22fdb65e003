"""The ukiyoe GAN end to end: the feature extractor (debug=fdr) feeds the GAN's FID/KID (debug=fdr; named in
summary.json), the GAN samples from its checkpoint, and a resumed GAN run ends exactly like an uninterrupted
one. (ukiyoe_nca_grow's debug=fdr run: tests/models/ukiyoe/test_grow_module.py.)"""

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import read_summary, run_dirs, run_main

SMALL = [
    "++data.num_train=32",
    "++data.num_val=16",
    "++data.num_test=16",
    "++data.batch_size=8",
    "++data.num_workers=0",
    "callbacks.model_summary=null",
    "trainer.enable_progress_bar=false",
]
GAN = ["experiment=ukiyoe_gan_nca", *SMALL, "model.grid_size=4", "trainer.limit_val_batches=1"]


@pytest.fixture(scope="module")
def features_checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ukiyoe")
    run_main(root, "experiment=ukiyoe_features", "debug=fdr", *SMALL)
    (run_dir,) = run_dirs(root, "ukiyoe_features")
    assert math.isfinite(read_summary(run_dir)["metrics"]["test/acc"])
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    return checkpoint


def test_the_gan_reports_fid_kid_beside_baselines_and_samples_from_its_checkpoint(
    tmp_path, features_checkpoint
):
    prints = ["model.quality.feature=prints", f"model.quality.features_checkpoint={features_checkpoint}"]
    run_main(tmp_path, *GAN, "debug=fdr", *prints)  # (the default, Inception: test_inception_fid.py)
    (run_dir,) = run_dirs(tmp_path, "ukiyoe_gan_nca")
    summary = read_summary(run_dir)
    metrics = summary["metrics"]
    assert re.fullmatch(r"classifier:ukiyoe_features \(weights sha1 [0-9a-f]{8}\)", summary["fid_features"])
    for name in ("model", "untrained", "real_vs_real", "noise"):
        assert math.isfinite(metrics[f"test/fid/{name}"]) and math.isfinite(metrics[f"test/kid/{name}"]), name
    assert metrics["test/fid/real_vs_real"] < metrics["test/fid/noise"]
    assert metrics["test/palette_exact_share"] == 1.0
    assert list((run_dir / "images").glob("samples_epoch000.png"))

    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    run_main(
        tmp_path, "task=sample", f"ckpt_path={checkpoint}", "sample.num=6", "+sample.options.nca_steps=6"
    )
    (sampled,) = run_dir.glob("sample_*")
    samples = read_summary(sampled)["samples"]
    images = np.load(samples["arrays"])["images"]
    assert images.shape == (6, 3, 32, 32) and samples["nca_steps"] == 6
    palette = np.load(samples["arrays"])["palette"]  # every pixel is one of the palette's colours
    pixels = images.transpose(0, 2, 3, 1).reshape(-1, 1, 3)
    assert (pixels == palette[None]).all(-1).any(-1).all()


def test_a_resumed_gan_run_ends_like_an_uninterrupted_one(tmp_path):
    epochs = ["trainer.limit_train_batches=3", "model.quality=null", "monitor=null", "test_after_fit=false"]
    run_main(tmp_path, *GAN, *epochs, "trainer.max_epochs=2", "run_name=whole")
    run_main(tmp_path, *GAN, *epochs, "trainer.max_epochs=1", "run_name=first")
    first = tmp_path / "logs" / "ukiyoe_gan_nca" / "runs" / "first" / "checkpoints" / "last.ckpt"
    run_main(tmp_path, *GAN, *epochs, "trainer.max_epochs=2", "run_name=resumed", f"ckpt_path={first}")

    def final_state(name: str) -> dict[str, torch.Tensor]:
        path = tmp_path / "logs" / "ukiyoe_gan_nca" / "runs" / name / "checkpoints" / "last.ckpt"
        return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]

    whole, resumed = final_state("whole"), final_state("resumed")
    assert whole.keys() == resumed.keys()
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key
