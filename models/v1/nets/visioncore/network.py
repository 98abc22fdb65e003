"""`VisionCoreNet`: the Yates-Lab VisionCore multi-session network (`MultiDatasetV1Model`) built from that
project's own model config (the path of one of its YAMLs, or the `model_config_dict` its checkpoints store),
so its trained weights load with their own names.

Per session: an `AffineAdapter` and a `GaussianReadout`; shared: the temporal front end, the ResNet, an
optional behaviour modulator (`concat`) and an optional ConvGRU. rate = softplus(readout), or exp(readout)
for `output_activation: none` (the seed's log-rate models).

Readouts are named. Those a migrated file brought (`stored_sessions`: name and unit count, from the file)
keep their names; a session of the data uses the readout of the same name, or the one `session_map`
assigns it (`{data session: stored readout}`, unit counts checked), and any other session gets a new
readout (`new_readouts`, the default; a migrated model sets it false, so a session it has no readout for
is an error naming both ways out). Nothing is matched by position.

The seed's stimulus is (B, 1, L, H, W) with lag 0 (the current frame) first; VisionCore's windows put the
current frame last, so `forward` reverses the lag axis. The seed normalised frames as (x - 127) / 255.

Ported (the code of 2025-10-20 onward): adapter `adapter` (scale) | `none`; frontend `learnable_temporal` |
`none`; convnet `resnet` | `densenet` | `none` (standard convolutions, rms/grn norms,
silu/gelu/relu/softplus/splitrelu, max/avg pools); modulator `none` | `concat`; recurrent `none` | `convgru`;
readout `gaussian` | `linear`; with adapter, frontend and convnet all `none` the model reads behaviour only
(modulator_only_convgru). The code of 2025-10-08 … 10-20 (`era="A"` or `"B"`, early.py): learned_res_small*, core_res*. A
config with any other part is refused by name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from models.v1.nets.network import Batch, SessionSpec, check_session_names, unknown_sessions
from models.v1.nets.output import inverse_output, output_activation
from models.v1.nets.visioncore.early import ResNetA, TemporalConvA, TemporalConvB
from models.v1.nets.visioncore.early_recurrence import ConvGRUA, ConvGRUB, ConvGRUModulatorA, FiLMModulatorA
from models.v1.nets.visioncore.frontend import AffineAdapter, LearnableTemporalConv
from models.v1.nets.visioncore.history import SpikeHistoryMLP
from models.v1.nets.visioncore.layers import DenseNet, ResNet
from models.v1.nets.visioncore.readout import ExcitatoryInhibitoryReadout, GaussianReadout, LinearReadout
from models.v1.nets.visioncore.recurrence import ConcatModulator, ConvGRU
from training.toolkit.errors import UserError

PORTED = {
    "adapter": ("adapter", "none"),
    "frontend": ("learnable_temporal", "none"),
    "convnet": ("resnet", "densenet", "none"),
    "modulator": ("concat", "none"),
    "recurrent": ("convgru", "none"),
    "readout": ("gaussian", "linear"),
}
OUTPUTS = {"softplus": "softplus", "none": "exp"}  # the seed's name -> VisionCore's


def read_seed_config(config: Mapping[str, Any] | str | os.PathLike) -> Mapping[str, Any]:
    """The seed's model config: a mapping, or the path of one of its model YAMLs (read as plain YAML)."""
    if isinstance(config, Mapping):
        return config
    path = Path(config).expanduser()
    if not path.is_file():
        raise UserError(
            f"model.net.config={str(config)!r} is neither a model config nor a file; give the seed's model YAML, "
            "e.g. model.net.config=/path/to/VisionCore/experiments/model_configs/learned_res_small.yaml."
        )
    loaded = yaml.safe_load(path.read_text())
    if not isinstance(loaded, Mapping):
        raise UserError(f"model.net.config: {path} does not hold a model config (a YAML mapping).")
    return loaded


def _part(
    config: Mapping[str, Any], name: str, ported: Mapping[str, tuple[str, ...]] = PORTED
) -> tuple[str, dict[str, Any]]:
    part = config.get(name) or {"type": "none"}
    kind = str(part.get("type", "none"))
    if kind not in ported.get(name, PORTED[name]):
        raise UserError(
            f"model.net.config.{name}.type={kind!r} is not ported from the Yates-Lab VisionCore yet (ported: "
            f"{', '.join(ported.get(name, PORTED[name]))}); the learned_resnet_*_gaussian configs (era C) and "
            "learned_res_small* (era A) use only ported parts."
        )
    return kind, dict(part.get("params") or {})


ERAS = (
    "C",
    "A",
    "B",
)  # the seed's network code of 2025-10-20 onward, 10-08 … 10-13, 10-13 … 10-20 (early.py)
PORTED_A = {
    "modulator": ("convgru", "film", "none"),
    "recurrent": ("convgru", "none"),
    "readout": ("gaussian", "gaussianei", "linear"),
}


class SharedCore(nn.Module):
    """What every session shares: `frontend`, `convnet`, optional `modulator` and `recurrent`, in the
    seed's code of `era` C (2025-10-20 onward), A (2025-10-08 … 10-13) or B (10-13 … 10-20)."""

    def __init__(self, config: Mapping[str, Any], era: str = "C") -> None:
        super().__init__()
        if era not in ERAS:
            raise UserError(
                f"model.net.era={era!r}: the ported eras of the seed's code are {', '.join(ERAS)}."
            )
        frontend_kind, frontend = _part(config, "frontend")
        convnet_kind, convnet = _part(config, "convnet")
        adapter_kind, _ = _part(config, "adapter")
        # no stimulus path at all: the seed fed the modulator a (B, 1, 1, 1, 1) tensor of ones
        self.behaviour_only = (adapter_kind, frontend_kind, convnet_kind) == ("none", "none", "none")
        modulator_kind, modulator = _part(config, "modulator", PORTED_A if era in ("A", "B") else PORTED)
        recurrent_kind, recurrent = _part(config, "recurrent", PORTED_A if era in ("A", "B") else PORTED)
        in_channels = int(config.get("initial_input_channels", 1))
        self.modulator = self.recurrent = None
        if era in ("A", "B"):
            if convnet_kind == "densenet":
                raise UserError(
                    f"model.net.era={era}: the densenet of this code is not ported (resnet or none)."
                )
            if frontend_kind == "none":
                self.frontend = nn.Identity()
            elif era == "A":
                self.frontend = TemporalConvA(in_channels=in_channels, **frontend)
            else:
                self.frontend = TemporalConvB(in_channels=in_channels, **frontend)
            channels = getattr(self.frontend, "out_channels", in_channels)
            self.convnet = ResNetA(channels, era=era, **convnet) if convnet_kind != "none" else nn.Identity()
            channels = getattr(self.convnet, "out_channels", channels)
            modulator.pop("feature_dim", None)  # the seed overwrote it with the convnet's channels
            if modulator_kind == "convgru":
                self.modulator = ConvGRUModulatorA(feature_dim=channels, era=era, **modulator)
                channels = self.modulator.out_dim
            elif modulator_kind == "film":
                self.modulator = FiLMModulatorA(feature_dim=channels, **modulator)
            if recurrent_kind == "convgru":
                gru = ConvGRUB if era == "B" else ConvGRUA
                self.recurrent = gru(channels, **recurrent)
                channels = self.recurrent.out_channels
            self.out_channels = channels
            return
        self.frontend = (
            LearnableTemporalConv(in_channels=in_channels, **frontend)
            if frontend_kind != "none"
            else nn.Identity()
        )
        channels = getattr(self.frontend, "out_channels", in_channels)
        nets = {"resnet": ResNet, "densenet": DenseNet}
        self.convnet = nets[convnet_kind](channels, **convnet) if convnet_kind != "none" else nn.Identity()
        channels = getattr(self.convnet, "out_channels", channels)
        if modulator_kind == "concat":
            self.modulator = ConcatModulator(**modulator)
            channels += self.modulator.out_dim
        if recurrent_kind == "convgru":
            self.recurrent = ConvGRU(channels, **recurrent)
            channels = self.recurrent.out_channels
        self.out_channels = channels

    def forward(self, stim: torch.Tensor, behavior: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, L, H, W) adapted stimulus, lag 0 first -> the features the readouts read."""
        features = self.convnet(self.frontend(stim))
        if self.modulator is not None:
            if behavior is None:
                raise UserError(
                    "model.net.config.modulator is concat but the batch has no 'behavior'; use sessions "
                    "with behaviour (the seed's 42-dim eye-velocity basis + eye position)."
                )
            features = self.modulator(features, behavior)
        if self.recurrent is not None:
            features = self.recurrent(features)
        return features


class VisionCoreNet(nn.Module):
    def __init__(
        self,
        sessions: Sequence[SessionSpec],
        config: Mapping[str, Any] | str,
        stored_sessions: Sequence[Mapping[str, Any]] | None = None,
        session_map: Mapping[str, str] | None = None,
        new_readouts: bool = True,
        era: str = "C",
    ) -> None:
        super().__init__()
        config = read_seed_config(config)
        if sessions:  # none: only the stored readouts (a migrated file read on its own)
            check_session_names(sessions)
        model_type = config.get("model_type", "v1multi")
        if model_type not in ("v1multi", "v1multi_history"):
            raise UserError(
                f"model.net.config.model_type={model_type!r}: v1multi and v1multi_history are ported."
            )
        output = str(config.get("output_activation", "none"))
        if output not in OUTPUTS:
            raise UserError(f"model.net.config.output_activation={output!r}: choose softplus or none (exp).")
        self.output = OUTPUTS[output]
        self.activation = output_activation(self.output)
        self.sessions = {spec.name: spec for spec in sessions}
        self.stored = {str(s["name"]): int(s["num_units"]) for s in stored_sessions or []}
        self.session_map = dict(session_map or {})
        self.new_readouts = new_readouts
        self.readout_of = self._route()

        adapter_kind, adapter = _part(config, "adapter")
        readout_kind, readout = _part(config, "readout", PORTED_A if era in ("A", "B") else PORTED)
        self.core = SharedCore(config, era)
        readout.pop("n_units", None)  # each session's own unit count
        units = {
            **self.stored,
            **{key: self.sessions[name].num_units for name, key in self.readout_of.items()},
        }
        self.adapters = (
            nn.ModuleDict({key: AffineAdapter(**adapter) for key in units})
            if adapter_kind == "adapter"
            else None
        )
        readers = {
            "gaussian": GaussianReadout,
            "linear": LinearReadout,
            "gaussianei": ExcitatoryInhibitoryReadout,
        }
        reader = readers[readout_kind]
        self.readouts = nn.ModuleDict(
            {key: reader(self.core.out_channels, count, **readout) for key, count in units.items()}
        )
        self.spike_history = None
        if model_type == "v1multi_history":  # the seed's defaults when the config has no history_encoder
            history = dict((config.get("history_encoder") or {}).get("params") or {})
            self.spike_history = nn.ModuleDict(
                {key: SpikeHistoryMLP(count, **history) for key, count in units.items()}
            )

    def _route(self) -> dict[str, str]:
        """Data session -> readout name: its own name, or `session_map`'s, checked against stored unit counts."""
        unknown = sorted(set(self.session_map) - set(self.sessions))
        if unknown:
            raise UserError(f"model.net.session_map names sessions the data does not have: {unknown}.")
        routes = {}
        for name, spec in self.sessions.items():
            key = self.session_map.get(name, name)
            if key in self.stored and self.stored[key] != spec.num_units:
                raise UserError(
                    f"Session {name!r} has {spec.num_units} units but the stored readout {key!r} reads "
                    f"{self.stored[key]}; map it to a readout of its own units (model.net.session_map) or "
                    "leave it unmapped for a new readout."
                )
            if name in self.session_map and key not in self.stored:
                raise UserError(
                    f"model.net.session_map maps {name!r} to {key!r}, which is not a stored readout "
                    f"({', '.join(self.stored) or 'none'})."
                )
            if key in self.stored or self.new_readouts:
                routes[name] = key
        return routes

    @property
    def session_names(self) -> list[str]:
        return list(self.sessions)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """`{session: (B, N) expected spikes per bin}`; the core runs once on every session's stimulus."""
        unknown_sessions(batch, self.sessions)
        names = list(batch)
        unread = [name for name in names if name not in self.readout_of]
        if unread:
            raise UserError(
                f"No readout reads session(s) {unread}: the stored readouts are {', '.join(self.stored)}. Map "
                "each to one of its own units (model.net.session_map={session: stored_name}) or fit new "
                "readouts (model.net.new_readouts=true)."
            )
        behavior = None
        if self.core.modulator is not None and all("behavior" in batch[name] for name in names):
            behavior = torch.cat([batch[name]["behavior"] for name in names])
        stims = []
        for name in names:
            if self.core.behaviour_only:
                if behavior is None:
                    raise UserError(
                        "The seed's modulator-only model reads behaviour only; the batch has none."
                    )
                size = batch[name]["behavior"].shape[0]
                stims.append(behavior.new_ones(size, 1, 1, 1, 1))
                continue
            x = batch[name]["stim"].flip(1).unsqueeze(1)  # (B, 1, L, H, W), lag 0 first
            if self.adapters is not None:
                x = self.adapters[self.readout_of[name]](x)
            stims.append(x)
        features = self.core(torch.cat(stims), behavior)
        sizes = [s.shape[0] for s in stims]
        rates = {}
        for name, part in zip(names, features.split(sizes), strict=True):
            key = self.readout_of[name]
            logits = self.readouts[key](part)
            if self.spike_history is not None and "history" in batch[name]:  # the units' own recent counts
                logits = logits + self.spike_history[key](batch[name]["history"])
            rates[name] = self.activation(logits)
        return rates

    @torch.no_grad()
    def init_readout_bias(self, session: str, mean_rates: torch.Tensor) -> None:
        """A new readout starts at the session's mean rates; a stored (trained) readout is left as it is."""
        key = self.readout_of.get(session)
        if key is not None and key not in self.stored:
            bias = self.readouts[key].bias
            bias.copy_(inverse_output(self.output, mean_rates.to(bias.device)))

    def no_weight_decay(self) -> set[str]:
        """Readout positions, widths, angles and biases, the adapters, and the norms' scales and shifts."""
        names = {f"readouts.{k}.{p}" for k in self.readouts for p in ("bias", "mean", "std", "theta")}
        if self.adapters is not None:
            names |= {f"adapters.{k}.{p}" for k in self.adapters for p in ("log_sigma", "log_scale")}
        names |= {name for name, _ in self.named_parameters() if name.endswith((".gamma", ".beta"))}
        return names
