"""fit writes a complete run directory; validate/test/predict work from ckpt_path alone."""

import csv
import json

import torch
from omegaconf import OmegaConf

from tests.helpers import TINY, read_summary, run_dirs, run_main
from training.toolkit.checkpoints import SCHEMA_VERSION

FIT = ["experiment=cnn_digits", *TINY, "model.lr_schedule=null", "run_name=base"]


def test_fit_writes_the_run_directory_and_test_from_checkpoint_alone(tmp_path, monkeypatch):
    run_main(tmp_path, *FIT, "torch_threads=2")  # the environment says OMP_NUM_THREADS=1: the key wins
    run_dir = tmp_path / "logs" / "cnn_digits" / "runs" / "base"
    for name in (
        "config.yaml",
        "summary.json",
        "metrics.csv",
        "checkpoints/last.ckpt",
        "rank0.log",
        "images/confusion_matrix_test.png",
    ):
        assert (run_dir / name).exists(), name
    summary = read_summary(run_dir)
    assert summary["status"] == "finished"
    assert summary["best_checkpoint"].startswith(str(run_dir / "checkpoints" / "best-"))
    assert summary["params"] > 1000
    assert summary["torch_threads"] == 2
    assert summary["performance"]["samples_per_s"] > 0
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert any(row.get("val/acc") for row in rows)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    meta = checkpoint["visioncore"]
    assert (
        meta["schema_version"] == SCHEMA_VERSION
        and meta["config"]["name"] == "cnn_digits"
        and meta["git_revision"]
    )

    # task=test needs only the checkpoint: the data/model config comes out of it; overrides still apply.
    best = summary["best_checkpoint"]
    reads, load = (
        [],
        torch.load,
    )  # the weights are read once: the experiment and config come from mapped loads

    def counting_load(path, *args, **kwargs):
        reads.append((str(path), kwargs.get("mmap", False)))
        return load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    run_main(tmp_path, "task=test", f"ckpt_path={best}", "data.eval_batch_size=64")
    monkeypatch.undo()
    assert [mmap for path, mmap in reads if path == best] == [True, True, False]
    (evaluation,) = [d for d in run_dir.iterdir() if d.name.startswith("test_")]
    evaluated = read_summary(evaluation)
    evaluated_config = OmegaConf.load(evaluation / "config.yaml")
    assert evaluated_config.data.eval_batch_size == 64 and evaluated_config.name == "cnn_digits"
    assert evaluated["metrics"]["test/acc"] == summary["metrics"]["test/acc"]
    assert json.loads((evaluation / "summary.json").read_text())["task"] == "test"

    run_main(tmp_path, "task=validate", f"ckpt_path={best}")
    (validation,) = [d for d in run_dir.iterdir() if d.name.startswith("validate_")]
    assert read_summary(validation)["metrics"]["val/acc"] == summary["best_score"]

    run_main(tmp_path, "task=predict", f"ckpt_path={best}")
    (prediction,) = [d for d in run_dir.iterdir() if d.name.startswith("predict_")]
    probabilities = torch.cat(torch.load(prediction / "predictions.pt"))
    assert probabilities.shape[1] == 10
    assert torch.allclose(probabilities.sum(1), torch.ones(len(probabilities)), atol=1e-5)

    refused = run_main(tmp_path, "task=sample", f"ckpt_path={best}", check=False)
    assert refused.returncode != 0
    assert "task=sample needs a generative model" in refused.stderr + refused.stdout


def test_each_run_gets_its_own_directory(tmp_path):
    run_main(tmp_path, *FIT[:-1], "test_after_fit=false", "trainer.max_epochs=1")
    run_main(tmp_path, *FIT[:-1], "test_after_fit=false", "trainer.max_epochs=1")
    assert len(run_dirs(tmp_path, "cnn_digits")) == 2


def test_ema_weights_are_what_gets_tested_and_saved(tmp_path):
    ema = [
        "callbacks=ema",
        "callbacks.ema.update_starting_at_step=2",
        "callbacks.ema.decay=0.9",
        "run_name=ema",
    ]
    run_main(tmp_path, *FIT[:-1], *ema)
    summary = read_summary(tmp_path / "logs" / "cnn_digits" / "runs" / "ema")
    best = torch.load(summary["best_checkpoint"], weights_only=True)
    averaged, raw = best["state_dict"], best["current_model_state"]
    assert any(not torch.equal(averaged[key], raw[key]) for key in averaged)

    run_main(tmp_path, "task=test", f"ckpt_path={summary['best_checkpoint']}")
    (evaluation,) = [
        d for d in (tmp_path / "logs" / "cnn_digits" / "runs" / "ema").iterdir() if d.name.startswith("test_")
    ]
    assert read_summary(evaluation)["metrics"]["test/acc"] == summary["metrics"]["test/acc"]
