"""ImageClassifierModel: loss and metrics on hand-built predictions, no host syncs in the step, test reports."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from models.cnn.module import CONFUSION_MATRIX_FILE, ImageClassifierModel
from models.cnn.nets.small_cnn import SmallCNN
from tests.helpers import forbid_host_syncs, quiet_trainer

CLASS_NAMES = ["plane", "car", "bird", "cat", "deer", "dog"]
# Eight samples over six classes. Argmax predictions [0,0,0,1,2,3,0,0] are right on samples 0-5:
# top-1 accuracy 6/8 = 0.75 (the per-class mean would be 4/6), per class [1,1,1,1,0,0].
LABELS = torch.tensor([0, 0, 0, 1, 2, 3, 4, 5])
LOGITS = torch.tensor(
    [
        [5.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [5.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [5.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 5.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 5.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 5.0, 0.0, 0.0],
        [5.0, 1.0, 2.0, 3.0, -1.0, 0.5],  # true class 4 has the lowest logit: a top-5 miss
        [5.0, 0.0, 0.0, 0.0, 0.0, 4.0],  # true class 5 ranks second: a top-5 hit
    ]
)


class FixedLogits(nn.Module):
    """Stub network: image i (its first pixel holds i) gets row i of a fixed logit table."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)
        self.offset = nn.Parameter(torch.zeros(()))  # something for the optimizer and autograd

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.table[images[:, 0, 0, 0].long()] + self.offset


def fixed_logit_loader(batch_size: int = 3) -> DataLoader:
    images = torch.zeros(len(LABELS), 1, 2, 2)
    images[:, 0, 0, 0] = torch.arange(len(LABELS), dtype=torch.float32)
    return DataLoader(TensorDataset(images, LABELS), batch_size=batch_size)


def make_classifier(net: nn.Module, num_classes: int, **kwargs) -> ImageClassifierModel:
    return ImageClassifierModel(
        net=net,
        num_classes=num_classes,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        lr_schedule=None,
        **kwargs,
    )


def random_digit_batch(count: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(count, 1, 8, 8, generator=generator), torch.randint(
        0, 10, (count,), generator=generator
    )


def test_host_sync_guard_catches_item_and_float() -> None:
    with forbid_host_syncs(), pytest.raises(AssertionError, match="item"):
        torch.ones(()).item()
    with forbid_host_syncs(), pytest.raises(AssertionError, match="__float__"):
        float(torch.ones(()))


def test_training_step_returns_finite_scalar_loss_with_grad() -> None:
    classifier = make_classifier(SmallCNN(num_classes=10, in_channels=1), num_classes=10)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*self.log.*")  # no trainer attached here
        loss = classifier.training_step(random_digit_batch(), 0)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad
    loss.backward()
    assert classifier.net.classifier.weight.grad is not None


def test_training_step_never_syncs_with_the_host(tmp_path: Path) -> None:
    classifier = make_classifier(SmallCNN(num_classes=10, in_channels=1), num_classes=10)
    unguarded_step = classifier.training_step

    def guarded_step(*args, **kwargs) -> torch.Tensor:
        with forbid_host_syncs():
            return unguarded_step(*args, **kwargs)

    classifier.training_step = guarded_step
    images, labels = random_digit_batch(16)
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)
    trainer = quiet_trainer(tmp_path, log_every_n_steps=1)
    trainer.fit(classifier, train_dataloaders=loader)

    assert trainer.global_step == 4
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])
    assert 0.0 <= trainer.callback_metrics["train/acc"] <= 1.0


def test_validation_metrics_match_hand_built_predictions(tmp_path: Path) -> None:
    classifier = make_classifier(FixedLogits(LOGITS), num_classes=6, class_names=CLASS_NAMES)
    (metrics,) = quiet_trainer(tmp_path).validate(classifier, dataloaders=fixed_logit_loader())

    assert metrics["val/acc"] == pytest.approx(0.75)
    assert metrics["val/acc_top5"] == pytest.approx(7 / 8)
    assert metrics["val/loss"] == pytest.approx(F.cross_entropy(LOGITS, LABELS).item(), rel=1e-5)


def test_test_epoch_reports_accuracy_per_class_and_confusion_matrix(tmp_path: Path) -> None:
    classifier = make_classifier(FixedLogits(LOGITS), num_classes=6, class_names=CLASS_NAMES)
    (metrics,) = quiet_trainer(tmp_path).test(classifier, dataloaders=fixed_logit_loader())

    assert metrics["test/acc"] == pytest.approx(0.75)
    assert metrics["test/acc_top5"] == pytest.approx(7 / 8)
    assert metrics["test/loss"] == pytest.approx(F.cross_entropy(LOGITS, LABELS).item(), rel=1e-5)
    per_class = {name: metrics[f"test/acc_class/{name}"] for name in CLASS_NAMES}
    assert per_class == pytest.approx({"plane": 1, "car": 1, "bird": 1, "cat": 1, "deer": 0, "dog": 0})

    png = tmp_path / "images" / CONFUSION_MATRIX_FILE
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_confusion_matrix_goes_to_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from pytorch_lightning.loggers import TensorBoardLogger

    classifier = make_classifier(FixedLogits(LOGITS), num_classes=6)
    logger = TensorBoardLogger(tmp_path, name="tb")
    with mock.patch.object(type(logger.experiment), "add_figure") as add_figure:
        quiet_trainer(tmp_path, logger=logger).test(classifier, dataloaders=fixed_logit_loader())
    add_figure.assert_called_once()
    assert add_figure.call_args.args[0] == "test/confusion_matrix"


def test_per_class_names_default_to_indices(tmp_path: Path) -> None:
    classifier = make_classifier(FixedLogits(LOGITS), num_classes=6)
    (metrics,) = quiet_trainer(tmp_path).test(classifier, dataloaders=fixed_logit_loader())
    assert metrics["test/acc_class/0"] == pytest.approx(1.0)
    assert metrics["test/acc_class/5"] == pytest.approx(0.0)


def test_predict_step_returns_class_probabilities() -> None:
    classifier = make_classifier(FixedLogits(LOGITS), num_classes=6).eval()
    images, _ = next(iter(fixed_logit_loader(batch_size=8)))
    probabilities = classifier.predict_step(images, 0)
    torch.testing.assert_close(probabilities, torch.softmax(LOGITS, dim=1))
    torch.testing.assert_close(classifier.predict_step((images, LABELS), 0), probabilities)


def test_input_shape_sets_example_input_array_and_names_are_checked() -> None:
    classifier = make_classifier(
        SmallCNN(num_classes=10, in_channels=1), num_classes=10, input_shape=[1, 8, 8]
    )
    assert classifier.example_input_array.shape == (1, 1, 8, 8)
    assert classifier(classifier.example_input_array).shape == (1, 10)
    with pytest.raises(ValueError, match="3 class_names but num_classes=10"):
        make_classifier(SmallCNN(num_classes=10), num_classes=10, class_names=["a", "b", "c"])


def test_hyperparameters_exclude_net_and_optimizer() -> None:
    classifier = make_classifier(SmallCNN(num_classes=10, in_channels=1), num_classes=10, label_smoothing=0.1)
    assert classifier.hparams.label_smoothing == 0.1
    assert not {"net", "optimizer", "lr_schedule"} & set(classifier.hparams)


def test_channels_last_converts_network_and_keeps_outputs() -> None:
    torch.manual_seed(0)
    net = SmallCNN(num_classes=10, in_channels=3).eval()
    images = torch.randn(2, 3, 16, 16)
    expected = net(images)
    classifier = make_classifier(net, num_classes=10, channels_last=True)
    classifier.setup("fit")
    assert net.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(classifier(images), expected)


def test_compile_happens_once_in_setup_and_keeps_the_state_dict_keys() -> None:
    net = SmallCNN(num_classes=10, in_channels=1)
    classifier = make_classifier(net, num_classes=10, compile=True)
    keys = set(classifier.state_dict())
    with mock.patch.object(net, "compile") as compile_net:
        classifier.setup("fit")
        classifier.setup("validate")
    compile_net.assert_called_once()
    assert set(classifier.state_dict()) == keys


def test_configure_optimizers_uses_the_optimizer_factory(tmp_path: Path) -> None:
    pytest.importorskip("training.toolkit.optim")
    classifier = make_classifier(SmallCNN(num_classes=10, in_channels=1), num_classes=10)
    images, labels = random_digit_batch(8)
    trainer = quiet_trainer(tmp_path, max_steps=1)
    trainer.fit(classifier, train_dataloaders=DataLoader(TensorDataset(images, labels), batch_size=8))
    (optimizer,) = trainer.optimizers
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
