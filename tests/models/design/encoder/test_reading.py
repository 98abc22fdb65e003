"""Reading designs with a trained encoder at its run's resolution, answered at the design's."""

from __future__ import annotations

from pathlib import Path

import hydra
import torch

from models.design.encoder.reading import encoder_f_tensor, trained_resolution
from tests.models.design.encoder_batches import synthetic_design_batch
from tests.models.design.stage_checkpoints import tiny_encoder_config, write_checkpoint


def test_trained_resolution_is_the_encoder_runs_data_resolution(tmp_path: Path) -> None:
    config = tiny_encoder_config()
    assert (
        trained_resolution(write_checkpoint(tmp_path / "a.ckpt", config, 0, data_config={"resolution": 128}))
        == 128
    )
    assert trained_resolution(write_checkpoint(tmp_path / "b.ckpt", config, 0)) is None


def test_encoder_reads_at_its_resolution_and_answers_at_the_designs() -> None:
    torch.manual_seed(0)
    encoder = hydra.utils.instantiate(tiny_encoder_config()).eval()
    image = synthetic_design_batch(batch_size=2, size=16)["image"]
    direct = encoder.predict_f_tensor(image)
    torch.testing.assert_close(encoder_f_tensor(encoder, image, resolution=None), direct)
    torch.testing.assert_close(encoder_f_tensor(encoder, image, resolution=16), direct)

    f_tensor = encoder_f_tensor(encoder, image, resolution=8)
    assert f_tensor.shape == (2, 4, 16, 16)
    coarse = f_tensor[..., ::2, ::2]  # nearest upsampling: each 2x2 block repeats one reading made at 8x8
    torch.testing.assert_close(f_tensor, coarse.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1))
    assert not torch.equal(f_tensor, direct)
