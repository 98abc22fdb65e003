"""LatestCheckpoint: step files with the full training state, the newest mirrored to last.ckpt."""

from __future__ import annotations

import logging

import torch

from callbacks.latest_checkpoint import LatestCheckpoint
from tests.callbacks.conftest import TinyRegressor, make_loader


def test_saves_the_full_state_every_n_steps_keeps_the_newest_and_says_nothing_about_weights_only(
    make_trainer, tmp_path, caplog
):
    latest = LatestCheckpoint(str(tmp_path / "checkpoints"), every_n_train_steps=3, keep=2)
    trainer = make_trainer(max_epochs=1, callbacks=[latest], enable_checkpointing=True)
    with caplog.at_level(logging.INFO, logger="pytorch_lightning"):
        trainer.fit(TinyRegressor(), make_loader(n=32, batch_size=4))
    assert sorted(path.name for path in latest.dirpath.glob("step*.ckpt")) == [
        "step00000006.ckpt",
        "step00000008.ckpt",
    ]
    newest = torch.load(latest.last_path, weights_only=True)
    assert newest["global_step"] == 8 and newest["optimizer_states"] and newest["loops"]
    assert "weights_only" not in caplog.text
