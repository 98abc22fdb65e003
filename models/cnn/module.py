"""`ImageClassifierModel`: the one LightningModule that trains, evaluates and predicts with any CNN classifier.

The network is injected (a plain `nn.Module`); this module owns the loss, the torchmetrics metrics,
optimisation (delegated to `training.toolkit.optim`) and the test-time per-class report and confusion matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from training.toolkit.errors import ConfigValueError
from training.toolkit.figures import plot_confusion_matrix, report_figure
from training.toolkit.net_options import NetOptions

CONFUSION_MATRIX_FILE = "confusion_matrix_test.png"


def check_net_fits_data(net: nn.Module, example: torch.Tensor, num_classes: int) -> None:
    """One forward of a blank image of the data's shape: the net must read it and give `num_classes` scores."""
    was_training = net.training
    try:
        with torch.no_grad():
            logits = net.eval()(example)
    except RuntimeError as err:
        raise ConfigValueError(
            f"model.net cannot read the data's images (data.input_shape={list(example.shape[1:])}): "
            f"{str(err).splitlines()[0]}. Check model.net.in_channels (default ${{data.input_shape.0}}) "
            "and the network's input size against the data."
        ) from None
    finally:
        net.train(was_training)
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ConfigValueError(
            f"model.net.num_classes: the network gives {logits.shape[-1]} class scores per image but the data "
            f"has {num_classes} classes (data.num_classes={num_classes}). Leave model.net.num_classes at its "
            f"default ${{data.num_classes}}, or set model.net.num_classes={num_classes}."
        )


class ImageClassifierModel(NetOptions, pl.LightningModule):
    """Cross-entropy training of `net` on `(images, labels)` batches, with top-1/top-5 accuracy metrics."""

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: Callable[[Iterable], torch.optim.Optimizer],
        lr_schedule: dict | None = None,
        label_smoothing: float = 0.0,
        compile: bool = False,
        channels_last: bool = False,
        class_names: Sequence[str] | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "lr_schedule"])
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigValueError(
                f"ImageClassifierModel got {len(class_names)} class_names but num_classes={num_classes}; "
                "check `data.class_names` / `data.num_classes` (model.class_names, model.num_classes)."
            )
        self.net = net
        self.optimizer_factory = optimizer
        self.lr_schedule = lr_schedule
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.class_names = [str(name) for name in class_names] if class_names is not None else None
        if input_shape is not None:
            self.example_input_array = torch.zeros(1, *(int(size) for size in input_shape))
            check_net_fits_data(net, self.example_input_array, num_classes)

        # One metric object per stage so their states never mix; validate_args=False keeps the
        # argument checks (which read tensor values on the host) out of the inner loop.
        top_k = min(5, num_classes)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc_top5 = MulticlassAccuracy(num_classes, top_k=top_k, average="micro", validate_args=False)
        self.test_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.test_acc_top5 = MulticlassAccuracy(
            num_classes, top_k=top_k, average="micro", validate_args=False
        )
        self.test_acc_per_class = MulticlassAccuracy(num_classes, average=None, validate_args=False)
        self.test_confusion = MulticlassConfusionMatrix(num_classes, validate_args=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of shape (N, num_classes)."""
        return self.net(self.net_input(x))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        self.train_acc.update(logits.detach(), labels)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        logits, labels, loss = self._evaluate(batch)
        self.val_acc.update(logits, labels)
        self.val_acc_top5.update(logits, labels)
        self.log("val/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc_top5", self.val_acc_top5, on_step=False, on_epoch=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        logits, labels, loss = self._evaluate(batch)
        self.test_acc.update(logits, labels)
        self.test_acc_top5.update(logits, labels)
        self.test_acc_per_class.update(logits, labels)
        self.test_confusion.update(logits, labels)
        self.log("test/loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True)
        self.log("test/acc_top5", self.test_acc_top5, on_step=False, on_epoch=True)

    def on_test_epoch_end(self) -> None:
        # compute() all-reduces metric states, so every rank must call it; only rank 0 writes files.
        per_class = self.test_acc_per_class.compute()
        confusion = self.test_confusion.compute()
        names = self._class_labels()
        for name, accuracy in zip(names, per_class, strict=True):
            self.log(f"test/acc_class/{name.replace('/', '_')}", accuracy)
        self.test_acc_per_class.reset()
        self.test_confusion.reset()
        if self.trainer.is_global_zero:
            self._report_confusion_matrix(confusion.cpu(), names)

    def predict_step(self, batch: torch.Tensor | Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Class probabilities (softmax of the logits) for a batch of images or `(images, labels)`."""
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        return torch.softmax(self(images), dim=1)

    def configure_optimizers(self) -> dict:
        from training.toolkit.optim import configure_optimization

        return configure_optimization(self, self.optimizer_factory, self.lr_schedule)

    def _evaluate(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits, labels and plain cross-entropy (no smoothing, so val/test losses compare across runs)."""
        images, labels = batch
        logits = self(images)
        return logits, labels, F.cross_entropy(logits, labels)

    def _class_labels(self) -> list[str]:
        return self.class_names if self.class_names is not None else [str(i) for i in range(self.num_classes)]

    def _report_confusion_matrix(self, confusion: torch.Tensor, names: list[str]) -> None:
        report_figure(
            self, plot_confusion_matrix(confusion, names), "test/confusion_matrix", CONFUSION_MATRIX_FILE
        )
