"""`EncoderModel`: trains the design encoder (P_Image -> F_Tensor) and serves its readings to later stages.

The network (a `DesignUNet` or anything returning `EncoderOutput`) is injected; this module owns the
`CompositeLoss`, the per-split torchmetrics (`EncoderMetrics`), optimisation (`training.toolkit.optim`), and the
prediction panels. The abstractor, the generative-quality features and phase 3 read a trained encoder
through `soft_structure` (differentiable) and `predict_f_tensor` (hard, the schema's F_Tensor).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import pytorch_lightning as pl
import torch
from torch import nn

from models.design.encoder.loss import CompositeLoss, LossParts
from models.design.encoder.metrics import EncoderMetrics
from models.design.encoder.plots import plot_encoder_predictions
from models.design.nets.encoder_heads import EncoderOutput, hard_f_tensor, soft_structure
from training.toolkit.figures import report_figure
from training.toolkit.net_options import NetOptions

Batch = Mapping[str, torch.Tensor]


class EncoderModel(NetOptions, pl.LightningModule):
    """CompositeLoss training of `net` on design batches (`image` in [-1, 1], `f_tensor`)."""

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[[Iterable], torch.optim.Optimizer],
        lr_schedule: dict | None = None,
        loss: CompositeLoss | None = None,
        num_panels: int = 4,
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net", "loss", "optimizer", "lr_schedule"])
        self.net = net
        self.loss = loss if loss is not None else CompositeLoss()
        self.optimizer_factory = optimizer
        self.lr_schedule = lr_schedule
        self.num_panels = num_panels
        # One metric object per split so their states never mix.
        self.train_metrics = EncoderMetrics()
        self.val_metrics = EncoderMetrics()
        self.test_metrics = EncoderMetrics()
        self._panel: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        """The heads (logits / raw hierarchy) for images (B, 3, H, W) in [-1, 1]."""
        images = self.net_input(images)
        return self.net(images)

    def soft_structure(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable (B, STRUCTURE_CHANNELS, H, W) in `schema.structure_channels`' layout."""
        return soft_structure(self(images))

    @torch.no_grad()
    def predict_f_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """The hard F_Tensor (B, 4, H, W) in the schema's layout (masks, colour ID as float, hierarchy)."""
        return hard_f_tensor(self(images))

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        _, parts = self._step(batch, "train", self.train_metrics)
        return parts.total

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        output, _ = self._step(batch, "val", self.val_metrics)
        if batch_idx == 0:
            self._keep_panel(batch, output)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        output, _ = self._step(batch, "test", self.test_metrics)
        if batch_idx == 0:
            self._keep_panel(batch, output)

    def on_validation_epoch_end(self) -> None:
        self._report_panel("val", f"encoder_predictions_val_epoch{self.current_epoch:03d}.png")

    def on_test_epoch_end(self) -> None:
        self._report_panel("test", "encoder_predictions_test.png")

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """The hard F_Tensor of each image in the batch."""
        return self.predict_f_tensor(batch["image"])

    def configure_optimizers(self) -> dict:
        from training.toolkit.optim import configure_optimization

        return configure_optimization(self, self.optimizer_factory, self.lr_schedule)

    def _step(self, batch: Batch, split: str, metrics: EncoderMetrics) -> tuple[EncoderOutput, LossParts]:
        """Forward, loss and metric updates of one batch; logs `<split>/loss`, its terms and the metrics."""
        images, f_tensor = batch["image"], batch["f_tensor"]
        output = self(images)
        parts = self.loss(output, f_tensor)
        with torch.no_grad():
            metrics.update(hard_f_tensor(output), f_tensor)
        training = split == "train"
        size = images.shape[0]
        sync = not training  # epoch means of val/test losses over all ranks; train logs this rank's
        self.log(
            f"{split}/loss",
            parts.total,
            on_step=training,
            on_epoch=True,
            prog_bar=True,
            batch_size=size,
            sync_dist=sync,
        )
        terms = {f"{split}/loss_{name}": value for name, value in parts._asdict().items() if name != "total"}
        self.log_dict(terms, on_step=False, on_epoch=True, batch_size=size, sync_dist=sync)
        self.log_dict(metrics.by_name(split), on_step=False, on_epoch=True, batch_size=size)
        return output, parts

    def _keep_panel(self, batch: Batch, output: EncoderOutput) -> None:
        """Keep the first batch's first `num_panels` samples (one host copy per epoch) for the panel."""
        if self.num_panels <= 0 or not self.trainer.is_global_zero or self.trainer.sanity_checking:
            return
        count = self.num_panels
        predicted = hard_f_tensor(EncoderOutput(*(head[:count] for head in output)))
        self._panel = (
            batch["image"][:count].float().cpu(),
            batch["f_tensor"][:count].float().cpu(),
            predicted.cpu(),
        )

    def _report_panel(self, split: str, filename: str) -> None:
        if self._panel is None:
            return
        images, truth, predicted = self._panel
        self._panel = None
        report_figure(
            self, plot_encoder_predictions(images, truth, predicted), f"{split}/predictions", filename
        )
