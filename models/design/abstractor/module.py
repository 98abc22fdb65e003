"""`AbstractorModel`: trains the abstractor on true (and encoder-read) F_Tensors; evaluates it on both.

Loss = w_goal·CE(goal) + w_format·CE(format) + w_tone·MSE(tone) + w_grammar·MSE(grammar). With
`encoder_checkpoint` set, validation and test also read each design through the trained encoder
(`EncoderModel.predict_f_tensor`, the pipeline's path) and log that metric set under
`<stage>/encoded/...` plus `<stage>/encoded_gap/...` (what the encoder costs, positive: worse).
The encoder reads each design at the resolution its run trained at (`models.design.encoder.reading`),
so an encoder trained at 128² serves an abstractor run at 64² or 256². It is loaded in `setup()` and
kept out of this module's state_dict (a plain dict attribute): the abstractor's checkpoints hold only
the abstractor. With `encoded_share` > 0 training replaces that share of every batch by the encoder's
reading of the same designs: the pipeline hands the abstractor encoder-read F_Tensors, whose hierarchy
and colour IDs err in ways the true ones never show it. The encoder (frozen, deterministic) reads the
whole training split once before training starts (`ordered_dataloader` of the datamodule; float16, exact
for masks and colour IDs): at 128² it costs ~5x an abstractor step, too much to pay every epoch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.aggregation import CatMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from models.design.abstractor.metrics import AbstractorMetrics, encoder_gap
from models.design.abstractor.plots import plot_grammar_scatter
from models.design.encoder.module import EncoderModel
from models.design.encoder.reading import encoder_f_tensor, trained_resolution
from models.design.nets.abstractor import Abstractor
from models.design.schema import FORMAT_NAMES, GOALS, structure_channels
from models.design.stages import STAGES
from training.toolkit.errors import UserError
from training.toolkit.figures import plot_confusion_matrix, report_figure
from training.toolkit.net_options import NetOptions
from training.toolkit.stage_checkpoint import load_trained_module

Batch = Mapping[str, torch.Tensor]
SOURCES = ("true", "encoded")  # which F_Tensors the abstractor reads: the data's, or the encoder's
STAGE = STAGES["abstractor"]
ENCODER_KEY = STAGE.key("encoder_checkpoint")
PROGRESS_EVERY_S = 60.0  # how often the encoder's one reading of the training set reports its progress
log = logging.getLogger(__name__)


class AbstractorModel(NetOptions, pl.LightningModule):
    """Multi-task training of an `Abstractor` (V_Meta + V_Grammar) from batches of the DesignDM."""

    def __init__(
        self,
        net: Abstractor,
        optimizer: Callable[[Iterable], torch.optim.Optimizer],
        lr_schedule: dict | None = None,
        goal_weight: float = 1.0,
        format_weight: float = 1.0,
        tone_weight: float = 1.0,
        grammar_weight: float = 1.0,
        encoder_checkpoint: str | None = None,
        encoded_share: float = 0.0,
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        check_encoded_share(encoded_share, encoder_checkpoint)
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "lr_schedule"])
        self.net = net
        self.optimizer_factory = optimizer
        self.lr_schedule = lr_schedule
        self.loss_weights = {
            "goal": goal_weight,
            "format": format_weight,
            "tone": tone_weight,
            "grammar": grammar_weight,
        }
        # Frozen modules of other stages: a plain dict, so they stay out of state_dict and parameters().
        self.stages: dict[str, pl.LightningModule] = {}
        self.encoder_resolution: int | None = None  # the encoder run's data.resolution
        self.encoded_train: torch.Tensor | None = None  # (N, 4, H, W) the encoder's reading, by design index
        self.metrics = nn.ModuleDict(
            {f"{stage}_{source}": AbstractorMetrics() for stage in ("val", "test") for source in SOURCES}
        )
        self.test_goal_confusion = MulticlassConfusionMatrix(len(GOALS), validate_args=False)
        self.test_format_confusion = MulticlassConfusionMatrix(len(FORMAT_NAMES), validate_args=False)
        # (N, 2, 4): predicted and true grammar per test design, per source, for the scatter figure
        self.test_grammar_pairs = nn.ModuleDict({source: CatMetric() for source in SOURCES})

    def forward(self, structure: torch.Tensor) -> dict[str, torch.Tensor]:
        """Structure channels (B, STRUCTURE_CHANNELS, H, W) -> goal/format logits, tone, grammar."""
        structure = self.net_input(structure)
        return self.net(structure)

    # --- set-up ----------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        super().setup(stage)
        path = self.hparams.encoder_checkpoint
        if path and "encoder" not in self.stages:
            if not Path(path).expanduser().is_file():
                raise UserError(
                    f"{ENCODER_KEY}={path} does not exist. Point it at the encoder run's checkpoint "
                    f"({STAGE.example_path(ENCODER_KEY)}), or set it to null to evaluate on true F_Tensors only."
                )
            self.stages["encoder"] = load_trained_module(path, ENCODER_KEY, expected=EncoderModel)
            self.encoder_resolution = trained_resolution(path)

    def on_fit_start(self) -> None:
        # before training starts (and the heartbeat's stall watch with it): the reading takes minutes
        self._encoder_to_device()
        if self.hparams.encoded_share > 0 and self.encoded_train is None:
            datamodule = self.trainer.datamodule
            if not hasattr(datamodule, "ordered_dataloader"):
                raise UserError(
                    f"model.encoded_share={self.hparams.encoded_share} reads the training designs through the "
                    "encoder once, from the datamodule's ordered_dataloader('train'); "
                    f"{type(datamodule).__name__} has none. Use data=design, or set model.encoded_share=0."
                )
            started = time.perf_counter()
            self.encoded_train = self.encode_designs(datamodule.ordered_dataloader("train"))
            log.info(
                "The encoder read %d training designs in %.0f s (model.encoded_share=%s).",
                len(self.encoded_train),
                time.perf_counter() - started,
                self.hparams.encoded_share,
            )

    @torch.no_grad()
    def encode_designs(self, loader: Iterable[Batch]) -> torch.Tensor:
        """The encoder's F_Tensor of every design of `loader`, at row `index` (float16 on this device)."""
        readings, indices = [], []
        total = len(getattr(loader, "dataset", ()))
        started = reported = time.perf_counter()
        for batch in loader:
            batch = self._on_device(batch)
            f_tensor = encoder_f_tensor(self.stages["encoder"], batch["image"], self.encoder_resolution)
            readings.append(f_tensor.half())
            indices.append(batch["index"])
            if time.perf_counter() - reported > PROGRESS_EVERY_S:  # a CPU reading takes many minutes
                reported, done = time.perf_counter(), sum(len(i) for i in indices)
                log.info(
                    "The encoder has read %d / %d designs (%.1f per s).",
                    done,
                    total,
                    done / (reported - started),
                )
        index = torch.cat(indices)
        table = torch.zeros((len(index), *readings[0].shape[1:]), dtype=torch.float16, device=self.device)
        table[index] = torch.cat(readings)
        return table

    def _on_device(self, batch: Batch) -> Batch:
        """`batch` as training sees it: on this device, after the datamodule's transfer hook."""
        batch = self.transfer_batch_to_device(batch, self.device, 0)
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        return datamodule.on_after_batch_transfer(batch, 0) if datamodule is not None else batch

    def on_validation_start(self) -> None:
        self._encoder_to_device()

    def on_test_start(self) -> None:
        self._encoder_to_device()

    def _encoder_to_device(self) -> None:
        if "encoder" in self.stages:
            self.stages["encoder"].to(self.device)

    # --- training --------------------------------------------------------------------------------
    def losses(self, predicted: Mapping[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """Each term (`goal`, `format` CE; `tone`, `grammar` MSE) and their weighted sum `total`."""
        terms = {
            "goal": F.cross_entropy(predicted["goal"], batch["goal"]),
            "format": F.cross_entropy(predicted["format"], batch["format"]),
            "tone": F.mse_loss(predicted["tone"], batch["tone"]),
            "grammar": F.mse_loss(predicted["grammar"], batch["grammar"]),
        }
        terms["total"] = sum(self.loss_weights[name] * value for name, value in terms.items())
        return terms

    def training_f_tensors(self, batch: Batch) -> torch.Tensor:
        """The batch's true F_Tensors, the first round(encoded_share * B) replaced by the encoder's reading
        of the same designs (the loader shuffles, so every epoch other designs are read through it)."""
        f_tensor = batch["f_tensor"]
        count = round(self.hparams.encoded_share * f_tensor.shape[0])
        if count == 0:
            return f_tensor
        encoded = self.encoded_train[batch["index"][:count]].to(f_tensor.dtype)
        return torch.cat([encoded, f_tensor[count:]])

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        losses = self.losses(self(structure_channels(self.training_f_tensors(batch))), batch)
        size = batch["goal"].shape[0]
        self.log("train/loss", losses["total"], on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        for name in self.loss_weights:
            self.log(f"train/loss_{name}", losses[name], on_step=False, on_epoch=True, batch_size=size)
        return losses["total"]

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """The abstractor's reading of each design's true F_Tensor (goal/format logits, tone, grammar)."""
        return self(structure_channels(batch["f_tensor"]))

    def configure_optimizers(self) -> dict:
        from training.toolkit.optim import configure_optimization

        return configure_optimization(self, self.optimizer_factory, self.lr_schedule)

    # --- evaluation ------------------------------------------------------------------------------
    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("test", batch)

    def _evaluate(self, stage: str, batch: Batch) -> None:
        readings = {"true": structure_channels(batch["f_tensor"])}
        if "encoder" in self.stages:
            f_tensor = encoder_f_tensor(self.stages["encoder"], batch["image"], self.encoder_resolution)
            readings["encoded"] = structure_channels(f_tensor)
        size = batch["goal"].shape[0]
        for source, structure in readings.items():
            predicted = self(structure)
            prefix = stage if source == "true" else f"{stage}/encoded"
            loss = self.losses(predicted, batch)["total"]
            self.log(f"{prefix}/loss", loss, on_epoch=True, sync_dist=True, batch_size=size)
            self.metrics[f"{stage}_{source}"].update(predicted, batch)
            if stage == "test":
                self.test_grammar_pairs[source].update(
                    torch.stack([predicted["grammar"], batch["grammar"]], dim=1)
                )
                if source == "true":
                    self.test_goal_confusion.update(predicted["goal"], batch["goal"])
                    self.test_format_confusion.update(predicted["format"], batch["format"])

    def on_validation_epoch_end(self) -> None:
        self._report("val")

    def on_test_epoch_end(self) -> None:
        self._report("test")
        # compute() all-reduces, so every rank calls it; only rank 0 draws.
        goal_confusion = self.test_goal_confusion.compute()
        format_confusion = self.test_format_confusion.compute()
        pairs = {
            s: self.test_grammar_pairs[s].compute()
            for s in SOURCES
            if self.test_grammar_pairs[s].update_called
        }
        for metric in (
            self.test_goal_confusion,
            self.test_format_confusion,
            *self.test_grammar_pairs.values(),
        ):
            metric.reset()
        if self.trainer.is_global_zero:
            self._report_figures(
                goal_confusion.cpu(), format_confusion.cpu(), {s: v.cpu() for s, v in pairs.items()}
            )

    def _report(self, stage: str) -> None:
        """Compute (all ranks), log and reset the true and, with an encoder, the encoded metric sets and gap."""
        values = {source: self.metrics[f"{stage}_{source}"].compute() for source in self._sources()}
        logged = {f"{stage}/{name}": value for name, value in values["true"].items()}
        if "encoded" in values:
            logged |= {f"{stage}/encoded/{name}": value for name, value in values["encoded"].items()}
            gap = encoder_gap(values["true"], values["encoded"])
            logged |= {f"{stage}/encoded_gap/{name}": value for name, value in gap.items()}
        for key, value in logged.items():
            self.log(key, value, sync_dist=False)  # already reduced over ranks by the metrics
        for source in self._sources():
            self.metrics[f"{stage}_{source}"].reset()

    def _sources(self) -> tuple[str, ...]:
        return SOURCES if "encoder" in self.stages else ("true",)

    def _report_figures(
        self, goal_confusion: torch.Tensor, format_confusion: torch.Tensor, pairs: dict[str, torch.Tensor]
    ) -> None:
        for name, confusion, labels in (
            ("goal", goal_confusion, GOALS),
            ("format", format_confusion, FORMAT_NAMES),
        ):
            figure = plot_confusion_matrix(confusion, labels)
            figure.axes[0].set_title(f"test {name} confusion (true F_Tensors)")
            report_figure(self, figure, f"test/{name}_confusion", f"{name}_confusion_test.png")
        if pairs:
            report_figure(
                self, plot_grammar_scatter(pairs), "test/grammar_scatter", "grammar_scatter_test.png"
            )


def check_encoded_share(share: float, encoder_checkpoint: str | None) -> None:
    """UserError unless `share` is a fraction and, when positive, an encoder is there to read with."""
    if not 0.0 <= share <= 1.0:
        raise UserError(
            f"model.encoded_share={share} is not a share of the batch: give a value in [0, 1] "
            "(0: train on true F_Tensors only)."
        )
    if share > 0 and not encoder_checkpoint:
        raise UserError(
            f"model.encoded_share={share} trains on the encoder's reading of the designs, but {ENCODER_KEY} "
            f"is not set. Give the encoder run's checkpoint ({STAGE.example_path(ENCODER_KEY)}), or set "
            "model.encoded_share=0."
        )
