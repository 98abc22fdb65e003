"""Fuzz list of ordinary user mistakes across the four systems: each ends with exit status 2 and one
paragraph that names the key or file at fault (no traceback), and an existing run is left untouched.

Every case runs `python -m training.run` in-process (`runpy`, exactly what `-m` runs). Mistakes in the
config are caught before Hydra creates or writes any run directory, so for those nothing at all may
change under the root. Mistakes only building the model or reading the data can reveal (`built`) get
a fresh run name and must leave the existing run of their experiment as it was.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from training.run_state import Run

EXPERIMENTS = (
    "cnn_digits",
    "v1_single",
    "design_encoder",
    "design_abstractor",
    "design_decoder",
    "ukiyoe_gan_nca",
)
KEEP = "keep"  # the existing run each experiment has; config mistakes are given with run_name=keep


@dataclass(frozen=True)
class Mistake:
    overrides: tuple[str, ...]
    named: tuple[str, ...]  # what the message must contain: the key (and value) or the file at fault
    built: bool = False  # found while building the model or reading the data (after Hydra made a run dir)
    experiment: str = "cnn_digits"


def M(*overrides: str, named: tuple[str, ...] | str, built: bool = False) -> Mistake:
    experiment = next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")), "cnn_digits")
    named = (named,) if isinstance(named, str) else named
    return Mistake(overrides, named, built, experiment if experiment in EXPERIMENTS else "cnn_digits")


V1, ENC, ABS, DEC, UKI = (f"experiment={e}" for e in EXPERIMENTS[1:])
FOLDER = ("data.source=image_folder", "data.batch_size=4", "debug=fdr")
UNREADABLE_PRINTS = (*FOLDER, "data.image_folder.train={root}/bad_images", "data.num_classes=1")
NO_GPU = torch.cuda.device_count() == 0

MISTAKES = {
    # ---- cnn_digits (the default experiment): values
    "batch_size_zero": M("data.batch_size=0", named="data.batch_size=0"),
    "batch_size_negative": M("data.batch_size=-4", named="data.batch_size=-4"),
    "batch_size_word": M("data.batch_size=many", named="data.batch_size=many"),
    "eval_batch_size_zero": M("data.eval_batch_size=0", named="data.eval_batch_size=0"),
    "num_workers_negative": M("data.num_workers=-1", named="data.num_workers=-1"),
    "lr_negative": M("model.optimizer.lr=-0.1", named="model.optimizer.lr=-0.1"),
    "lr_word": M("model.optimizer.lr=fast", named="model.optimizer.lr=fast"),
    "weight_decay_negative": M("model.optimizer.weight_decay=-1", named="model.optimizer.weight_decay=-1"),
    "seed_word": M("seed=notanumber", named="seed=notanumber"),
    "val_fraction_above_one": M("data.val_fraction=1.5", named="data.val_fraction=1.5"),
    "torch_threads_zero": M("torch_threads=0", named="torch_threads=0"),
    "monitor_mode_word": M("monitor_mode=maximum", named="monitor_mode=maximum"),
    "gradient_clip_negative": M("trainer.gradient_clip_val=-1", named="trainer.gradient_clip_val=-1"),
    "max_epochs_word": M("trainer.max_epochs=many", named="trainer.max_epochs"),
    "precision_unknown": M("trainer.precision=17", named="trainer.precision=17"),
    "accumulate_zero": M("trainer.accumulate_grad_batches=0", named="trainer.accumulate_grad_batches=0"),
    "limit_batches_share_above_one": M(
        "trainer.limit_train_batches=1.5", named="trainer.limit_train_batches"
    ),
    "devices_zero": M("trainer.devices=0", named="trainer.devices=0"),
    "gpus_this_machine_lacks": M(
        "trainer.accelerator=gpu",
        "trainer.devices=2",
        named=("trainer.accelerator=gpu", "trainer.devices=2", "this machine has", "CPU cores"),
    ),
    "gpu_preset_without_gpu": M("trainer=gpu", named=("trainer.accelerator=gpu", "no CUDA GPU")),
    "image_folder_missing": M(
        "data=image_folder", "data.image_folder.train={root}/nope", named="{root}/nope"
    ),
    "image_folder_unset": M("data=image_folder", named="data.image_folder.train"),
    # ---- launch options and keys
    "unknown_key": M("trainer.max_epoch=3", named=("trainer.max_epoch", "+trainer.max_epoch")),
    "override_without_value": M("data.batch_size", named="data.batch_size"),
    "bad_experiment": M("experiment=cnn_digit", named=("experiment=cnn_digit", "experiment=cnn_digits")),
    "bad_trainer_option": M("trainer=gpus", named=("trainer=gpus", "trainer=gpu")),
    "bad_debug_option": M("debug=fast", named=("debug=fast", "fdr")),
    "bad_data_option": M("data=cifar11", named=("data=cifar11", "cifar10")),
    "resume_sometimes": M("resume=sometimes", named=("resume", "sometimes", "auto")),
    "task_unknown": M("task=train", named="task=train"),
    "existing_run_without_resume": M("debug=fdr", named=("resume=auto", f"run_name={KEEP}")),
    # ---- checkpoint paths
    "test_without_ckpt_path": M("task=test", named="ckpt_path"),
    "test_ckpt_missing": M("task=test", "ckpt_path=/nonexistent/last.ckpt", named="/nonexistent/last.ckpt"),
    "test_ckpt_is_directory": M(
        "task=test", "ckpt_path={keep}/checkpoints", named=("{keep}/checkpoints", "directory")
    ),
    "test_ckpt_is_text": M(
        "task=test",
        "ckpt_path={keep}/checkpoints/notes.ckpt",
        named=("{keep}/checkpoints/notes.ckpt", "not a readable"),
    ),
    "test_with_bad_value": M(
        "task=test", "ckpt_path={keep}/checkpoints/last.ckpt", "data.batch_size=0", named="data.batch_size=0"
    ),
    "fit_from_missing_ckpt": M("ckpt_path={root}/missing.ckpt", named="{root}/missing.ckpt"),
    # ---- cnn: what building the model or reading the data reveals
    "net_num_classes_vs_data": M(
        "model.net.num_classes=3", named=("model.net.num_classes", "10 classes"), built=True
    ),
    "net_in_channels_vs_data": M("model.net.in_channels=3", named="model.net.in_channels", built=True),
    "data_num_classes_vs_dataset": M("data.num_classes=12", named="data.num_classes=12", built=True),
    "dataset_unknown": M("data.dataset=imagenet", named="data.dataset='imagenet'", built=True),
    "unreadable_image_folder_cnn": M(
        "data=image_folder",
        "data.image_folder.train={root}/bad_classes",
        "data.num_classes=2",
        "data.batch_size=4",
        "debug=fdr",
        named="{root}/bad_classes/",
        built=True,
    ),
    "image_folder_smaller_than_a_batch": M(
        "data=image_folder",
        "data.image_folder.train={root}/bad_classes",
        "data.num_classes=2",
        "debug=fdr",
        named="data.batch_size=64",
        built=True,
    ),
    # ---- v1_single
    "v1_batch_size_zero": M(V1, "data.batch_size=0", named="data.batch_size=0"),
    "v1_lr_negative": M(V1, "model.optimizer.lr=-1", named="model.optimizer.lr=-1"),
    "v1_unknown_dataset": M(
        V1, "v1.dataset=t9_tiny", named=("data.dataset_configs_path", "t9_tiny", "t0_tiny"), built=True
    ),
    "v1_pretrained_missing": M(
        V1,
        "model.pretrained_checkpoint={root}/core.ckpt",
        named=("model.pretrained_checkpoint", "{root}/core.ckpt"),
    ),
    "v1_train_fraction_zero": M(V1, "data.train_fraction=0", named="data.train_fraction=0"),
    "v1_bad_size_option": M(V1, "size=huge", named=("size=huge", "small")),
    "v1_resident_word": M(V1, "data.resident=maybe", named="data.resident", built=True),
    "v1_unknown_stim_type": M(V1, "data.stim_types=[noise]", named="data.stim_types", built=True),
    # ---- design
    "design_encoder_num_workers": M(ENC, "data.num_workers=-2", named="data.num_workers=-2"),
    "design_encoder_storage": M(ENC, "data.storage=zip", named="data.storage", built=True),
    "design_abstractor_lr_zero": M(ABS, "model.optimizer.lr=0", named="model.optimizer.lr=0"),
    "design_abstractor_encoder_ckpt_text": M(
        ABS,
        "model.encoder_checkpoint={root}/notes.ckpt",
        named=("model.encoder_checkpoint", "{root}/notes.ckpt"),
    ),
    "design_decoder_quality_ckpt_missing": M(
        DEC,
        "model.quality.encoder_checkpoint=/nonexistent/enc.ckpt",
        named="model.quality.encoder_checkpoint",
    ),
    "design_decoder_num_train_zero": M(DEC, "data.num_train=0", named="data.num_train=0"),
    "design_decoder_condition_dropout": M(
        DEC, "model.condition_dropout=2", named="model.condition_dropout=2"
    ),
    # ---- ukiyoe_gan_nca
    "ukiyoe_unreadable_images": M(UKI, *UNREADABLE_PRINTS, named="{root}/bad_images/", built=True),
    "ukiyoe_unreadable_images_in_workers": M(
        UKI, *UNREADABLE_PRINTS, "data.num_workers=2", named="{root}/bad_images/", built=True
    ),
    "ukiyoe_folder_unset": M(UKI, *FOLDER, named="data.image_folder.train", built=True),
    "ukiyoe_folder_without_images": M(
        UKI,
        *FOLDER,
        "data.image_folder.train={root}/empty",
        "data.num_classes=1",
        named="holds no images",
        built=True,
    ),
    "ukiyoe_num_classes_vs_folder": M(
        UKI, *FOLDER, "data.image_folder.train={root}/good_images", named="data.num_classes=4", built=True
    ),
    "ukiyoe_folder_smaller_than_a_batch": M(
        UKI,
        "data.source=image_folder",
        "debug=fdr",
        "data.image_folder.train={root}/good_images",
        "data.num_classes=1",
        named=("data.batch_size=16", "data.image_folder.train"),
        built=True,
    ),
    "ukiyoe_source_unknown": M(UKI, "data.source=folder", named="data.source", built=True),
    "ukiyoe_g_lr_negative": M(UKI, "model.g_optimizer.lr=-0.002", named="model.g_optimizer.lr=-0.002"),
    "ukiyoe_val_fraction_one": M(
        UKI, "data.image_folder.val_fraction=1", named="data.image_folder.val_fraction=1"
    ),
    "ukiyoe_features_ckpt_is_directory": M(
        UKI,
        "model.quality.features_checkpoint={root}",
        named=("model.quality.features_checkpoint", "directory"),
    ),
}
SKIP = {
    "gpus_this_machine_lacks": torch.cuda.device_count() >= 2,
    "gpu_preset_without_gpu": not NO_GPU,
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with one finished-looking run per experiment and the bad files the cases point at."""
    root = tmp_path_factory.mktemp("mistakes")
    for experiment in EXPERIMENTS:
        run = root / "logs" / experiment / "runs" / KEEP
        (run / "checkpoints").mkdir(parents=True)
        (run / ".hydra").mkdir()
        (run / ".hydra" / "config.yaml").write_text(f"name: {experiment}\n")
        (run / "config.yaml").write_text(f"name: {experiment}\nrun_name: {KEEP}\n")
        (run / "summary.json").write_text(json.dumps({"status": "finished", "experiment": experiment}))
        (run / "metrics.csv").write_text("step,train/loss\n0,2.3\n")
        (run / "rank0.log").write_text("the run's own log\n")
        torch.save({"state_dict": {}, "epoch": 1}, run / "checkpoints" / "last.ckpt")
        (run / "checkpoints" / "notes.ckpt").write_text("my notes, not a checkpoint")
    (root / "notes.ckpt").write_text("not a checkpoint either")
    for name in ("bad_images", "bad_classes/a", "bad_classes/b", "good_images", "empty"):
        (root / name).mkdir(parents=True)
    for i in range(12):
        (root / "bad_images" / f"print{i:02d}.png").write_bytes(b"not a png")
        (root / "bad_classes" / "ab"[i % 2] / f"img{i:02d}.png").write_bytes(b"\x89PNG truncated")
        Image.new("RGB", (8, 8), (20 * i, 0, 0)).save(root / "good_images" / f"print{i:02d}.png")
    past = 1_000_000_000  # every file's mtime set in the past: a rewrite shows even within one second
    for path in root.rglob("*"):
        os.utime(path, (past, past))
    return root


def snapshot(folder: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every file's bytes and mtime (directories: None) under `folder`."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    }


def run_cli(
    overrides: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> tuple[int, str]:
    """`python -m training.run OVERRIDES` in this process: (exit status, everything it printed)."""
    monkeypatch.setattr(sys, "argv", ["training/run.py", *overrides])
    Run.new_launch()  # the run directory is chosen afresh, as a new process would
    GlobalHydra.instance().clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(SystemExit) as exited:
            runpy.run_module("training.run", run_name="__main__")  # what `python -m training.run` runs
    finally:
        GlobalHydra.instance().clear()
        torch.set_num_threads(threads)
    printed = capsys.readouterr()
    return exited.value.code, printed.out + printed.err


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_mistake_gets_one_paragraph_and_changes_nothing(case, root, monkeypatch, capsys):
    if SKIP.get(case):
        pytest.skip("this machine has the devices that case asks for")
    mistake = MISTAKES[case]
    keep = root / "logs" / mistake.experiment / "runs" / KEEP
    fill = {"root": root, "keep": keep}
    overrides = [o.format(**fill) for o in mistake.overrides]
    overrides.append(f"run_name={case if mistake.built else KEEP}")
    for name in ("VISIONCORE_RUN_ID", "PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(name, raising=False)  # set by a run; removed again after the case
    monkeypatch.setenv("VISIONCORE_ROOT", str(root))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    before_all, before_keep = snapshot(root), snapshot(keep)

    status, output = run_cli(overrides, monkeypatch, capsys)

    assert status == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("Error: ") or "[ERROR] - " in line]
    assert len(errors) == 1, output[-3000:]  # one paragraph: the message is one line
    for named in mistake.named:
        assert named.format(**fill) in errors[0], errors[0]
    assert snapshot(keep) == before_keep, "the existing run changed"
    if not mistake.built:  # a config mistake is found before anything is written, anywhere
        assert snapshot(root) == before_all, sorted(set(snapshot(root)) ^ set(before_all))


def test_the_fuzz_list_covers_every_system():
    assert len(MISTAKES) >= 40
    assert {m.experiment for m in MISTAKES.values()} == set(EXPERIMENTS)
