"""AbstractorModel: loss and metrics on hand-built readings, evaluation through a trained encoder's checkpoint."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from models.design.abstractor import module as abstractor_module
from models.design.abstractor.metrics import AbstractorMetrics, encoder_gap
from models.design.abstractor.module import AbstractorModel
from models.design.encoder.module import EncoderModel
from models.design.encoder.reading import encoder_f_tensor
from models.design.schema import F_TEXT, GRAMMAR_NAMES, structure_channels
from tests.helpers import forbid_host_syncs, quiet_trainer
from tests.models.design.encoder_batches import synthetic_design_batch
from tests.models.design.stage_checkpoints import tiny_encoder_config, write_checkpoint
from training.toolkit.errors import UserError
from training.toolkit.stage_checkpoint import load_trained_module

# Four designs. Goal read right on designs 0-2 (acc 3/4), format on all (acc 1).
GOAL = torch.tensor([0, 1, 2, 3])
FORMAT = torch.tensor([0, 1, 2, 3])
GOAL_LOGITS = 5.0 * torch.eye(5)[[0, 1, 2, 4]]
FORMAT_LOGITS = 5.0 * torch.eye(4)
TONE = torch.tensor([[0.2, 0.8], [0.5, 0.5], [0.0, 1.0], [0.9, 0.1]])
TONE_READ = TONE + torch.tensor([[0.1, 0.0], [0.0, 0.0], [0.0, -0.2], [0.0, 0.0]])  # |error| 0.3 / 8
GRAMMAR = torch.full((4, 4), 0.5)
# per-design errors: alignment 0.1 each (MAE 0.1), contrast 0.4 once (0.1), balance none (0),
# hierarchy 0.2 three times (0.15, the maximum)
GRAMMAR_ERRORS = torch.tensor(
    [[0.1, 0.4, 0.0, 0.2], [0.1, 0.0, 0.0, 0.2], [-0.1, 0.0, 0.0, 0.2], [0.1, 0.0, 0.0, 0.0]]
)
GRAMMAR_READ = GRAMMAR + GRAMMAR_ERRORS
EXPECTED = {
    "goal_acc": 0.75,
    "format_acc": 1.0,
    "tone_mae": 0.3 / 8,
    "tone_vs_constant": (0.3 / 8)
    / (2.4 / 8),  # the constant 0.5 is off by 0.3 + 0.3 + 0 + 0 + 0.5 + 0.5 + 0.4 + 0.4
    "grammar_mae/alignment": 0.1,
    "grammar_mae/contrast": 0.1,
    "grammar_mae/balance": 0.0,
    "grammar_mae/hierarchy": 0.15,
    "grammar_mae_max": 0.15,
}


class FixedReadings(nn.Module):
    """Stub abstractor: design i (the first pixel of its text channel holds i) gets row i of fixed readings."""

    def __init__(self) -> None:
        super().__init__()
        for name, table in {
            "goal": GOAL_LOGITS,
            "format": FORMAT_LOGITS,
            "tone": TONE_READ,
            "grammar": GRAMMAR_READ,
        }.items():
            self.register_buffer(name, table)
        self.offset = nn.Parameter(torch.zeros(()))  # something for the optimizer and autograd

    def forward(self, structure: torch.Tensor) -> dict[str, torch.Tensor]:
        index = structure[:, 0, 0, 0].long().clamp(0, 3)
        return {
            name: getattr(self, name)[index] + self.offset for name in ("goal", "format", "tone", "grammar")
        }


def design_batch(size: int = 16) -> dict[str, torch.Tensor]:
    batch = synthetic_design_batch(batch_size=4, size=size)
    batch["f_tensor"][:, F_TEXT, 0, 0] = torch.arange(4, dtype=torch.float32)
    return batch | {
        "goal": GOAL,
        "format": FORMAT,
        "tone": TONE,
        "grammar": GRAMMAR,
        "index": torch.arange(4),
    }


def design_loader(batch_size: int = 4) -> DataLoader:
    batch = design_batch()
    samples = [{key: value[i] for key, value in batch.items()} for i in range(4)]
    return DataLoader(samples, batch_size=batch_size)


class DesignData(pl.LightningDataModule):
    """The four designs as DesignDM serves them: a training loader, an ordered one, images as they are."""

    def __init__(self, batch_size: int = 2) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.ordered_reads = 0

    def train_dataloader(self) -> DataLoader:
        return design_loader(self.batch_size)

    def ordered_dataloader(self, split: str) -> DataLoader:
        assert split == "train"
        self.ordered_reads += 1
        return design_loader(batch_size=3)  # batches that do not divide the set: the last one is short


def make_module(net: nn.Module | None = None, **kwargs) -> AbstractorModel:
    return AbstractorModel(
        net=net if net is not None else FixedReadings(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        **kwargs,
    )


@pytest.fixture(scope="module")
def encoder_checkpoint(tmp_path_factory) -> Path:
    """An encoder run trained at 8x8: the 16x16 test designs are read at 8x8 and answered at 16x16."""
    folder = tmp_path_factory.mktemp("encoder")
    return write_checkpoint(
        folder / "encoder.ckpt", tiny_encoder_config(), seed=1, data_config={"resolution": 8}
    )


def test_loss_is_the_weighted_sum_of_cross_entropies_and_mean_squared_errors() -> None:
    module = make_module(goal_weight=2.0, format_weight=0.5, tone_weight=3.0, grammar_weight=10.0)
    readings = {"goal": GOAL_LOGITS, "format": FORMAT_LOGITS, "tone": TONE_READ, "grammar": GRAMMAR_READ}
    losses = module.losses(readings, design_batch())

    goal_ce = torch.nn.functional.cross_entropy(GOAL_LOGITS, GOAL)
    format_ce = torch.log(4.0 - 1.0 + torch.exp(torch.tensor(5.0))) - 5.0  # every format right, logit 5 vs 0
    assert losses["goal"] == pytest.approx(goal_ce.item(), rel=1e-6)
    assert losses["format"] == pytest.approx(format_ce.item(), rel=1e-5)
    assert losses["tone"] == pytest.approx((0.1**2 + 0.2**2) / 8, rel=1e-5)
    assert losses["grammar"] == pytest.approx((4 * 0.1**2 + 0.4**2 + 3 * 0.2**2) / 16, rel=1e-5)
    expected_total = 2.0 * goal_ce + 0.5 * format_ce + 3.0 * 0.05 / 8 + 10.0 * 0.32 / 16
    assert losses["total"] == pytest.approx(expected_total.item(), rel=1e-5)


def test_metrics_of_perfect_and_of_known_readings() -> None:
    metrics = AbstractorMetrics()
    metrics.update(
        {"goal": 5.0 * torch.eye(5)[GOAL], "format": FORMAT_LOGITS, "tone": TONE, "grammar": GRAMMAR},
        design_batch(),
    )
    perfect = metrics.compute()
    assert perfect["goal_acc"] == 1.0 and perfect["format_acc"] == 1.0
    assert perfect["tone_mae"] == 0.0 and perfect["grammar_mae_max"] == 0.0

    metrics.reset()
    metrics.update(
        {"goal": GOAL_LOGITS, "format": FORMAT_LOGITS, "tone": TONE_READ, "grammar": GRAMMAR_READ},
        design_batch(),
    )
    known = {name: value.item() for name, value in metrics.compute().items()}
    assert known == pytest.approx(EXPECTED, abs=1e-6)
    assert [f"grammar_mae/{name}" for name in GRAMMAR_NAMES] == [
        k for k in known if k.startswith("grammar_mae/")
    ]

    gap = encoder_gap(perfect, metrics.compute())  # "encoded" = the known readings: what they lose
    assert gap["goal_acc"] == pytest.approx(0.25) and gap["grammar_mae_max"] == pytest.approx(0.15)


def test_validation_logs_the_known_metrics_over_batches(tmp_path: Path) -> None:
    (metrics,) = quiet_trainer(tmp_path).validate(make_module(), dataloaders=design_loader(batch_size=3))
    assert {name: metrics[f"val/{name}"] for name in EXPECTED} == pytest.approx(EXPECTED, abs=1e-6)
    assert not any(key.startswith("val/encoded") for key in metrics)


def test_predict_step_reads_the_true_f_tensors() -> None:
    readings = make_module().eval().predict_step(design_batch(), 0)
    torch.testing.assert_close(readings["goal"], GOAL_LOGITS)
    torch.testing.assert_close(readings["grammar"], GRAMMAR_READ)


@pytest.mark.parametrize("encoded_share", [0.0, 0.5])
def test_training_step_never_syncs_with_the_host(tmp_path: Path, encoder_checkpoint, encoded_share) -> None:
    module = make_module(encoder_checkpoint=str(encoder_checkpoint), encoded_share=encoded_share)
    unguarded_step = module.training_step

    def guarded_step(*args, **kwargs) -> torch.Tensor:
        with forbid_host_syncs():
            return unguarded_step(*args, **kwargs)

    module.training_step = guarded_step
    trainer = quiet_trainer(tmp_path, log_every_n_steps=1)
    trainer.fit(module, datamodule=DesignData(batch_size=2))
    assert trainer.global_step == 2
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])


def expected_encoded(encoder: EncoderModel, net: nn.Module) -> dict[str, float]:
    """Goal accuracy and max grammar MAE of `net` reading the encoder's hard F_Tensors, by hand."""
    batch = design_batch()
    readings = net(structure_channels(encoder_f_tensor(encoder, batch["image"], resolution=8)))
    grammar_mae = (readings["grammar"] - GRAMMAR).abs().mean(dim=0)
    return {
        "goal_acc": (readings["goal"].argmax(1) == GOAL).float().mean().item(),
        "grammar_mae_max": grammar_mae.max().item(),
    }


def test_evaluation_reads_true_and_encoded_f_tensors_and_keeps_the_encoder_out(
    tmp_path: Path, encoder_checkpoint
) -> None:
    module = make_module(encoder_checkpoint=str(encoder_checkpoint))
    trainer = quiet_trainer(tmp_path)
    (val,) = trainer.validate(module, dataloaders=design_loader())
    (test,) = trainer.test(module, dataloaders=design_loader())

    encoder = load_trained_module(encoder_checkpoint, "test", expected=EncoderModel)
    encoded = expected_encoded(encoder, FixedReadings())
    for stage, metrics in (("val", val), ("test", test)):
        assert metrics[f"{stage}/goal_acc"] == pytest.approx(0.75)
        assert metrics[f"{stage}/encoded/goal_acc"] == pytest.approx(encoded["goal_acc"])
        assert metrics[f"{stage}/encoded/grammar_mae_max"] == pytest.approx(
            encoded["grammar_mae_max"], abs=1e-6
        )
        assert metrics[f"{stage}/encoded_gap/goal_acc"] == pytest.approx(0.75 - encoded["goal_acc"])
        assert {f"{stage}/encoded/grammar_mae/{name}" for name in GRAMMAR_NAMES} <= set(metrics)

    assert isinstance(module.stages["encoder"], EncoderModel) and module.encoder_resolution == 8
    assert set(module.state_dict()) == {f"net.{name}" for name in FixedReadings().state_dict()}
    assert sum(p.numel() for p in module.parameters()) == 1
    for name in ("goal_confusion_test.png", "format_confusion_test.png", "grammar_scatter_test.png"):
        assert (tmp_path / "images" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_encoder_reads_the_training_designs_once_by_index(
    tmp_path: Path, encoder_checkpoint, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(abstractor_module, "PROGRESS_EVERY_S", 0.0)  # report after every batch
    module = make_module(encoder_checkpoint=str(encoder_checkpoint), encoded_share=0.5)
    data = DesignData(batch_size=2)
    trainer = quiet_trainer(tmp_path, max_epochs=2)
    with caplog.at_level(logging.INFO, logger=abstractor_module.__name__):
        trainer.fit(module, datamodule=data)

    progress = [r.getMessage() for r in caplog.records if "has read" in r.getMessage()]
    assert [m.split(" designs")[0] for m in progress] == [
        "The encoder has read 3 / 4",
        "The encoder has read 4 / 4",
    ]

    encoder = load_trained_module(encoder_checkpoint, "test", expected=EncoderModel)
    by_hand = encoder_f_tensor(encoder, design_batch()["image"], resolution=8)
    assert data.ordered_reads == 1 and trainer.global_step == 4  # two epochs, one reading
    assert module.encoded_train.dtype == torch.float16
    torch.testing.assert_close(module.encoded_train.float(), by_hand, rtol=1e-3, atol=1e-3)
    assert "encoded_train" not in str(list(module.state_dict()))


@pytest.mark.parametrize(("share", "encoded"), [(0.0, 0), (0.5, 2), (0.6, 2), (1.0, 4)])
def test_training_reads_the_share_of_the_batch_through_the_encoder(share, encoded) -> None:
    module = make_module(encoder_checkpoint="encoder.ckpt", encoded_share=share)
    batch = design_batch()
    order = torch.tensor([2, 0, 3, 1])  # a shuffled batch: rows come by design index
    batch = {key: value[order] for key, value in batch.items()}
    module.encoded_train = -torch.arange(4.0).view(4, 1, 1, 1).expand(4, 4, 16, 16).half()
    f_tensor = module.training_f_tensors(batch)

    assert f_tensor.shape == batch["f_tensor"].shape and f_tensor.dtype == torch.float32
    expected = -order[:encoded].float().view(-1, 1, 1, 1).expand(encoded, 4, 16, 16)
    torch.testing.assert_close(f_tensor[:encoded], expected)
    torch.testing.assert_close(f_tensor[encoded:], batch["f_tensor"][encoded:])


def test_a_datamodule_without_an_ordered_loader_is_named(tmp_path: Path, encoder_checkpoint) -> None:
    module = make_module(encoder_checkpoint=str(encoder_checkpoint), encoded_share=0.5)
    with pytest.raises(
        UserError, match=r"model\.encoded_share=0\.5 .*ordered_dataloader.*model\.encoded_share=0"
    ):
        quiet_trainer(tmp_path).fit(module, train_dataloaders=design_loader())


@pytest.mark.parametrize(
    ("share", "checkpoint", "message"),
    [
        (1.5, "encoder.ckpt", r"model\.encoded_share=1\.5 is not a share.*\[0, 1\]"),
        (-0.1, None, r"model\.encoded_share=-0\.1 is not a share"),
        (0.5, None, r"model\.encoded_share=0\.5 .* model\.encoder_checkpoint is not set"),
    ],
)
def test_a_bad_encoded_share_names_the_keys_and_the_fix(share, checkpoint, message) -> None:
    with pytest.raises(UserError, match=message):
        make_module(encoded_share=share, encoder_checkpoint=checkpoint)


def test_a_missing_encoder_checkpoint_names_the_config_key(tmp_path: Path) -> None:
    module = make_module(encoder_checkpoint=str(tmp_path / "absent.ckpt"))
    with pytest.raises(UserError, match=r"model\.encoder_checkpoint=.*absent\.ckpt"):
        module.setup("validate")
