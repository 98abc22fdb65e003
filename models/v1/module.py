"""`MultiDatasetModel`: trains one shared vision core with one readout per recording session.

The network (`MultiSessionNet` or a baseline with the same `forward(batch) -> {session: rates}`) is
built from the dataset configs, so the readouts match the sessions' unit lists before any data is
read. This module owns the masked Poisson loss, the regularisers, the exact bits/spike metrics
(per session, pooled over sessions, and against the simulator's oracle), transfer learning
(`pretrained_checkpoint` + `freeze_vision`), `compile_model`, and the checkpoint's record of which
sessions and units the readouts belong to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanMetric

from datamodules.v1.dataset_configs import DatasetConfigs, load_dataset_configs
from models.v1.checkpoint_record import check_record, record_of
from models.v1.losses import MaskedLoss
from models.v1.metrics import (
    MaskedPearson,
    OracleInformation,
    PoissonBPSAggregator,
    RepeatIndex,
    RepeatReliability,
)
from models.v1.nets.network import SessionSpec
from models.v1.readout_init import EnergySTA
from models.v1.summaries import (
    summarize_bps,
    summarize_correlation,
    summarize_oracle,
    summarize_recovery,
    summarize_repeats,
)
from training.toolkit.errors import UserError

Batch = Mapping[str, Mapping[str, torch.Tensor]]
log = logging.getLogger(__name__)
STAGES = ("val", "test")
READOUT_INITS = ("energy_sta", "centre")  # where readout positions start (see _init_readouts)
# readout_prior: the pretrained units' feature distribution as a prior on new readouts' (models.v1.readout_prior),
# in units of the MAP weight
REGULARIZATION_KEYS = ("readout_l1", "core_smoothness", "shifter", "readout_prior")
WHITE_NOISE_STIMULI = ("gaborium",)


def session_specs(configs: DatasetConfigs) -> list[SessionSpec]:
    """What the network needs per session, from the dataset configs alone (no data read)."""
    parent = configs.parent
    return [
        SessionSpec(
            name=session.name,
            num_units=session.num_units,
            unit_ids=list(session.unit_ids),
            behavior_dim=len(parent.get("behavior") or []),
            pixels_per_degree=parent.get("pixels_per_degree"),
            frame_shape=configs.frame_shape,
        )
        for session in configs.sessions
    ]


class MultiDatasetModel(pl.LightningModule):
    """Poisson training of `net` on stratified multi-session batches; reports bits/spike and oracle fractions.

    The sessions are those of the dataset-config folder `dataset_configs_path`, or, when that is null, of
    the simulated dataset `dataset` (e.g. `t1_small`), as for the datamodule (`load_dataset_configs`).
    """

    def __init__(
        self,
        net: Callable[..., nn.Module],
        dataset_configs_path: str | None,
        optimizer: Callable[[Iterable], torch.optim.Optimizer],
        lr_schedule: dict | None = None,
        max_datasets: int | None = None,
        sessions: Sequence[str] | None = None,
        regularization: Mapping[str, float] | None = None,
        pretrained_checkpoint: str | None = None,
        freeze_vision: bool = False,
        compile_model: bool = False,
        readout_init: str = "energy_sta",
        dataset: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "lr_schedule"])
        self.configs: DatasetConfigs = load_dataset_configs(
            dataset_configs_path, max_datasets, sessions, dataset=dataset
        )
        self.session_names = self.configs.session_names
        self.net = net(sessions=session_specs(self.configs))
        self.optimizer_factory = optimizer
        self.lr_schedule = lr_schedule
        self.regularization = dict(regularization or {})
        unknown = set(self.regularization) - set(REGULARIZATION_KEYS)
        if unknown:
            raise UserError(
                f"model.regularization has unknown keys {sorted(unknown)}; use {', '.join(REGULARIZATION_KEYS)}."
            )
        if self.regularization.get("readout_prior") and not pretrained_checkpoint:
            raise UserError(
                "model.regularization.readout_prior fits its prior to the readouts of "
                "model.pretrained_checkpoint=PATH: set it, or set readout_prior to 0."
            )
        if readout_init not in READOUT_INITS:
            raise UserError(f"model.readout_init={readout_init!r}: choose one of {', '.join(READOUT_INITS)}.")
        if freeze_vision and not pretrained_checkpoint:
            raise UserError(
                "model.freeze_vision=true needs model.pretrained_checkpoint=PATH (the core to keep frozen)."
            )
        self.loss = MaskedLoss()
        self.eval_loss = nn.ModuleDict({stage: MeanMetric() for stage in STAGES})
        self.bps = nn.ModuleDict(
            {
                stage: nn.ModuleDict({n: PoissonBPSAggregator(s.num_units) for n, s in self._sessions()})
                for stage in STAGES
            }
        )
        # Against the true rates, and (tiers with a hidden gain) against the achievable rates: the part of
        # the truth the inputs can predict, the reference of the T2 target.
        self.oracle, self.achievable = (
            nn.ModuleDict(
                {
                    stage: nn.ModuleDict({n: OracleInformation(s.num_units) for n, s in self._sessions()})
                    for stage in STAGES
                }
            )
            for _ in range(2)
        )
        self.correlation = nn.ModuleDict({n: MaskedPearson(s.num_units) for n, s in self._sessions()})
        self.reliability = nn.ModuleDict()  # test only, for sessions with repeated sequences (setup)
        self.repeat_index: dict[str, RepeatIndex] = {}
        self._core_compiled = False
        if freeze_vision:
            for parameter in self.vision_modules().parameters():
                parameter.requires_grad_(False)

    def _sessions(self):
        return ((session.name, session) for session in self.configs.sessions)

    # --- structure -------------------------------------------------------------------------------
    def vision_modules(self) -> nn.Module:
        """What `freeze_vision` freezes and `pretrained_checkpoint` loads: the shared core."""
        if not hasattr(self.net, "core"):
            raise UserError(
                f"{type(self.net).__name__} has no shared core: model.pretrained_checkpoint, model.freeze_vision "
                "and model.compile_model apply to model=v1_core only."
            )
        return self.net.core

    def train(self, mode: bool = True) -> MultiDatasetModel:
        # A frozen core stays in eval mode (dropout off, any running statistics fixed) whoever calls train().
        super().train(mode)
        if self.hparams.freeze_vision:
            self.vision_modules().eval()
        return self

    def on_train_epoch_start(self) -> None:
        # Lightning sets submodule modes itself (not through train()), so re-assert it every epoch.
        if self.hparams.freeze_vision:
            self.vision_modules().eval()

    def no_weight_decay(self) -> set[str]:
        return {f"net.{name}" for name in getattr(self.net, "no_weight_decay", lambda: set())()}

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Predicted expected spike counts per bin, `{session: (B, N)}`."""
        return self.net(batch)

    def setup(self, stage: str) -> None:
        if stage == "test":
            self._build_repeat_metrics()
        if stage != "fit":
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        source = self.hparams.pretrained_checkpoint
        # read once: the core, and the readouts the prior is fitted to (__init__ refused a prior without one)
        if source:
            from models.v1.transfer import load_pretrained_core, pretrained_weights

            weights = pretrained_weights(source)
            load_pretrained_core(self, weights, source)
            if self.regularization.get("readout_prior"):
                self._init_readout_prior(datamodule, weights)
        if datamodule is not None:
            self._init_readouts(datamodule)

    def _init_readouts(self, datamodule: Any) -> None:
        """Readouts start at their session's mean rates and, with `energy_sta`, at the peak of each unit's
        energy spike-triggered average: a readout started far from its receptive field never finds it.
        Every rank computes the same values; a resumed run overwrites them with the checkpoint's."""
        for name in self.session_names:
            if hasattr(datamodule, "mean_rates") and hasattr(self.net, "init_readout_bias"):
                self.net.init_readout_bias(name, datamodule.mean_rates(name))
            wants_positions = self.hparams.readout_init == "energy_sta"
            if (
                wants_positions
                and hasattr(datamodule, "training_windows")
                and hasattr(self.net, "init_readout_positions")
            ):
                # White-noise-like stimuli localise an STA best (measured on T1 small: median RF-centre error
                # 0.07-0.08 deg from gaborium windows vs 0.27-0.78 deg from all types, natural images dominating).
                noise = [
                    kind for kind in WHITE_NOISE_STIMULI if kind in getattr(datamodule, "stim_types", ())
                ]
                sta = EnergySTA()
                for batch in datamodule.training_windows(name, stim_types=noise or None):
                    sta.update(batch["stim"], batch["robs"], batch["dfs"])
                if sta.spikes is not None:
                    self.net.init_readout_positions(name, sta.positions())

    @torch.no_grad()
    def _init_readout_prior(self, datamodule: Any, pretrained: dict) -> None:
        """Fit the feature prior to the pretrained run's readouts, weigh it as a prior over this run's
        training bins (the loss is a mean over unit x bin entries, so weight 1 is the MAP estimate), and
        start every new unit at its mean (a resumed run's checkpoint then overwrites the features)."""
        from models.v1.readout_prior import ReadoutFeaturePrior
        from models.v1.transfer import readout_features

        if not hasattr(datamodule, "training_bins"):
            raise UserError(
                "model.regularization.readout_prior weighs its prior by the training bins of the v1 datamodule: "
                "fit with data=v1 (the experiment's default), or set readout_prior to 0."
            )
        entries = sum(
            datamodule.training_bins(name) * self.configs.session(name).num_units
            for name in self.session_names
        )
        self.prior_weight = self.regularization["readout_prior"] / (2 * max(entries, 1))
        units = readout_features(pretrained, self.hparams.pretrained_checkpoint)
        self.readout_prior = ReadoutFeaturePrior(units)
        log.info(
            "Readout prior: fitted to the %d units of %s; weight %.3g = %g / (2 x %d training unit-bins).",
            len(units), self.hparams.pretrained_checkpoint, self.prior_weight,
            self.regularization["readout_prior"], entries,
        )  # fmt: skip
        for readout in self.net.readouts.values():  # the core loaded strictly: the channel counts agree
            readout.features.copy_(self.readout_prior.mean.expand_as(readout.features))

    def _build_repeat_metrics(self) -> None:
        """FEVE / noise-corrected correlation need each session's repeat layout (its trials)."""
        for name, session in self._data_sessions().items():
            index = RepeatIndex(session.trials)
            if name in self.session_names and index.num_positions > 0 and name not in self.reliability:
                self.repeat_index[name] = index
                self.reliability[name] = RepeatReliability(
                    self.configs.session(name).num_units, index.num_positions
                )

    def configure_model(self) -> None:
        # nn.Module.compile compiles in place, so state_dict keys stay `net.core.*` (no `_orig_mod`).
        if self.hparams.compile_model and not self._core_compiled:
            self.vision_modules().compile()
            self._core_compiled = True

    # --- training --------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        rates = self(batch)
        total, count = self._masked_loss(batch, rates)
        loss = total / count.clamp_min(1.0)
        penalty = self._regularization()
        size = sum(len(session["robs"]) for session in batch.values())
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        self.log("train/penalty", penalty, on_step=True, on_epoch=False, batch_size=size)
        return loss + penalty + self._touch_absent_sessions(batch)

    def _touch_absent_sessions(self, batch: Batch) -> torch.Tensor | float:
        """0 x the parameters of sessions missing from this step (data.sessions_per_step), so DDP sees a
        gradient (of zero) for every parameter every step and needs no find_unused_parameters."""
        modules = [
            module
            for group in ("readouts", "adapters", "shifters", "modulator", "units")
            for name, module in (getattr(self.net, group, None) or {}).items()
            if name not in batch
        ]
        params = [p for module in modules for p in module.parameters() if p.requires_grad]
        return sum(p.sum() for p in params) * 0.0 if params else 0.0

    def _masked_loss(
        self, batch: Batch, rates: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Poisson NLL summed over every session's valid entries, and their count (sessions weighted by data)."""
        sums, counts = zip(
            *(
                self.loss.sum_and_count(rates[name], batch[name]["robs"], batch[name]["dfs"])
                for name in rates
            ),
            strict=True,
        )
        return torch.stack(sums).sum(), torch.stack(counts).sum()

    def _regularization(self) -> torch.Tensor:
        penalty = torch.zeros((), device=self.device)
        terms = {
            "readout_l1": "readout_regularization",
            "core_smoothness": "core_regularization",
            "shifter": "shifter_regularization",
        }
        for key, method in terms.items():
            weight = self.regularization.get(key, 0.0)
            if weight:
                penalty = penalty + weight * getattr(self.net, method)()
        if self.regularization.get("readout_prior"):
            features = torch.cat([readout.features for readout in self.net.readouts.values()])
            penalty = penalty + self.prior_weight * self.readout_prior.penalty(features)
        return penalty

    def configure_optimizers(self) -> dict:
        from training.toolkit.optim import configure_optimization

        return configure_optimization(self, self.optimizer_factory, self.lr_schedule)

    # --- evaluation ------------------------------------------------------------------------------
    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate("test", batch)

    def _evaluate(self, stage: str, batch: Batch) -> None:
        rates = self(batch)
        total, count = self._masked_loss(batch, rates)
        # Weighted by valid entries (on the device, no host read): the epoch value is the mean over every entry
        # on 1 or N processes alike.
        self.eval_loss[stage].update(total / count.clamp_min(1.0), weight=count)
        self.log(f"{stage}/loss", self.eval_loss[stage], on_epoch=True)
        for name, predicted in rates.items():
            session = batch[name]
            self.bps[stage][name].update(predicted, session["robs"], session["dfs"])
            for truth, metrics in (("rates", self.oracle), ("achievable", self.achievable)):
                if truth in session:
                    metrics[stage][name].update(predicted, session[truth], session["robs"], session["dfs"])
            if stage == "test":
                self.correlation[name].update(predicted, session["robs"], session["dfs"])
                if name in self.reliability and "trial" in session:
                    position = self.repeat_index[name].positions(session["trial"], session["frame"])
                    self.reliability[name].update(predicted, session["robs"], session["dfs"], position)

    def on_validation_epoch_end(self) -> None:
        self._report("val")

    def on_test_epoch_end(self) -> None:
        report = self._report("test")
        sessions = self._data_sessions()
        for key, value in summarize_recovery("test", self.net, sessions).items():
            self.log(key, value, sync_dist=False)  # parameters are identical on every rank
        if self.trainer.is_global_zero and sessions:
            from models.v1.plots import report_test_plots

            report_test_plots(self, report, sessions)

    def _data_sessions(self) -> dict[str, Any]:
        """The datamodule's open `Session`s (geometry and ground truth), when there is a datamodule."""
        datamodule = getattr(self.trainer, "datamodule", None)
        return dict(getattr(datamodule, "sessions", None) or {})

    def _report(self, stage: str) -> dict[str, Any]:
        """Compute (all ranks: compute() all-reduces), log scalars, reset; returns per-unit results."""
        per_session = {name: metric.compute() for name, metric in self.bps[stage].items()}
        oracle, achievable = (
            {name: metric.compute() for name, metric in metrics[stage].items() if metric.update_called}
            for metrics in (self.oracle, self.achievable)
        )
        scalars = (
            summarize_bps(stage, per_session)
            | summarize_oracle(stage, oracle, self.cell_types())
            | summarize_oracle(stage, achievable, self.cell_types(), reference="achievable")
        )
        if stage == "test":
            scalars |= summarize_correlation(
                stage, {n: m.compute() for n, m in self.correlation.items() if m.update_called}
            )
            repeats = {n: m.compute() for n, m in self.reliability.items() if m.update_called}
            scalars |= summarize_repeats(stage, repeats)
            for metric in (*self.correlation.values(), *self.reliability.values()):
                metric.reset()
        for key, value in scalars.items():
            self.log(key, value, sync_dist=False)  # already reduced over ranks by the metrics
        for metric in (
            *self.bps[stage].values(),
            *self.oracle[stage].values(),
            *self.achievable[stage].values(),
        ):
            metric.reset()
        return {"bps": per_session, "oracle": oracle, "scalars": scalars}

    def cell_types(self) -> dict[str, Sequence[str]]:
        """Per-session cell type of each unit from simulated ground truth (empty for real data)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        return datamodule.cell_types() if hasattr(datamodule, "cell_types") else {}

    # --- checkpoints -----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["v1"] = record_of(self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_record(self, checkpoint.get("v1"))
