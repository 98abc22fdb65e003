"""EncoderModel: the schema layout of its readings, learning on a fixed batch, logged metrics and panels."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from models.design.encoder.module import EncoderModel
from models.design.nets.encoder_heads import EncoderOutput
from models.design.nets.unet import DesignUNet
from models.design.schema import STRUCTURE_CHANNELS, structure_channels
from tests.helpers import quiet_trainer
from tests.models.design.encoder_batches import confident_heads, synthetic_design_batch

METRIC_NAMES = ("text_iou", "image_iou", "color_acc", "color_miou", "hierarchy_mse")


class FixedHeads(nn.Module):
    """Stub network: confident heads that read `f_tensor` back, whatever the images."""

    def __init__(self, f_tensor: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("f_tensor", f_tensor)
        self.offset = nn.Parameter(torch.zeros(()))  # something for the optimizer and autograd

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        heads = confident_heads(self.f_tensor[: images.shape[0]])
        return EncoderOutput(*(head + self.offset for head in heads))


def make_module(net: nn.Module, lr: float = 1e-2, **kwargs) -> EncoderModel:
    return EncoderModel(net=net, optimizer=functools.partial(torch.optim.Adam, lr=lr), **kwargs)


def design_loader(batch: dict[str, torch.Tensor], batch_size: int) -> DataLoader:
    samples = [{key: value[i] for key, value in batch.items()} for i in range(len(batch["image"]))]
    return DataLoader(samples, batch_size=batch_size)


def test_hard_and_soft_readings_share_the_schema_layout() -> None:
    batch = synthetic_design_batch(batch_size=2, size=16)
    f_tensor = batch["f_tensor"]
    net = FixedHeads(f_tensor)
    with torch.no_grad():
        net.f_tensor[0, 3, 0, 0] = 1.4  # a raw hierarchy above 1 reads as 1
    module = make_module(net)
    expected = f_tensor.clone()
    expected[0, 3, 0, 0] = 1.0

    hard = module.predict_f_tensor(batch["image"])
    soft = module.soft_structure(batch["image"])
    assert torch.equal(hard, expected)
    assert soft.shape == (2, STRUCTURE_CHANNELS, 16, 16)
    torch.testing.assert_close(soft, structure_channels(hard), atol=1e-6, rtol=0)


def test_soft_structure_is_differentiable_and_predict_f_tensor_is_not() -> None:
    module = make_module(DesignUNet(base_channels=4, depth=2))
    images = synthetic_design_batch(batch_size=1, size=16)["image"]
    module.soft_structure(images).sum().backward()
    assert module.net.head.weight.grad is not None and module.net.head.weight.grad.abs().sum() > 0
    assert not module.predict_f_tensor(images).requires_grad


def test_a_frozen_encoder_passes_gradients_to_its_input_images() -> None:
    # phase 3: the grammar score of the encoder's reading steers the decoder's image through the frozen encoder
    module = make_module(DesignUNet(base_channels=4, depth=2)).eval().requires_grad_(False)
    images = synthetic_design_batch(batch_size=1, size=16)["image"].requires_grad_()
    module.soft_structure(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_a_few_steps_on_a_fixed_batch_reduce_the_loss() -> None:
    torch.manual_seed(0)
    batch = synthetic_design_batch(batch_size=2, size=16)
    module = make_module(DesignUNet(base_channels=4, depth=2), lr=3e-2)
    optimizer = module.optimizer_factory(module.parameters())
    losses = []
    for _ in range(30):  # the colour CE starts at ln(NUM_COLOR_IDS) = 5.4 and halves after ~22 steps
        loss = module.loss(module(batch["image"]), batch["f_tensor"]).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_validation_of_a_perfect_reader_scores_perfectly_and_draws_a_panel(tmp_path: Path) -> None:
    batch = synthetic_design_batch(batch_size=4, size=16)
    module = make_module(FixedHeads(batch["f_tensor"]), num_panels=2)
    trainer = quiet_trainer(tmp_path, num_sanity_val_steps=0)
    (scores,) = trainer.validate(module, design_loader(batch, batch_size=4), verbose=False)
    assert scores["val/text_iou"] == 1.0
    assert scores["val/image_iou"] == 1.0
    assert scores["val/color_acc"] == 1.0
    assert scores["val/color_miou"] == 1.0
    assert scores["val/hierarchy_mse"] == 0.0
    assert scores["val/loss"] == pytest.approx(0.0, abs=1e-5)
    assert (tmp_path / "images" / "encoder_predictions_val_epoch000.png").is_file()


def test_fit_and_test_log_every_split_and_draw_panels(tmp_path: Path) -> None:
    batch = synthetic_design_batch(batch_size=4, size=16)
    module = make_module(DesignUNet(base_channels=4, depth=2), num_panels=1)
    trainer = quiet_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=1, log_every_n_steps=1)
    trainer.fit(module, design_loader(batch, 2), design_loader(batch, 4))
    logged = set(trainer.callback_metrics)
    for split in ("train", "val"):
        assert {f"{split}/{name}" for name in METRIC_NAMES} <= logged
        assert {f"{split}/loss_dice", f"{split}/loss_bce", f"{split}/loss_color_ce"} <= logged
    (scores,) = trainer.test(module, design_loader(batch, 4), verbose=False)
    assert {f"test/{name}" for name in METRIC_NAMES} | {"test/loss"} <= set(scores)
    images = sorted(path.name for path in (tmp_path / "images").iterdir())
    # the sanity check draws nothing; one panel per validation epoch and one at test
    assert images == ["encoder_predictions_test.png", "encoder_predictions_val_epoch000.png"]
