"""`MultiSessionNet`: per-session adapters and shifters, one shared core run once per batch, per-session readouts.

A batch is `{session: {"stim": (B, L, H, W) float, "eyepos": (B, L, 2), "behavior": (B, D)?, ...}}`.
All sessions' stimuli are concatenated so the core runs once (one kernel launch per layer, fixed
shapes for DDP and `torch.compile`); the features are split back and routed to the session's readout
by name. A single-session CNN is this class with one session.

state_dict layout: `adapters.<session>.{weight,bias}`, `shifters.<session>.mlp.*`, `core.*`,
`modulator.<session>.mlp.*`, `readouts.<session>.{mu,sigma,features,bias}`,
`outputs.<session>.{floor,saturation}` (`naka_rushton` only; only the configured parts).

Example config (the Hydra YAML mirrors it; `sessions` comes from the dataset configs):
    core: {_target_: models.v1.nets.core.V1Core, num_lags: 8, ...}
    readout: {init_sigma: 0.05, init_mu_range: 0.1}   # then init_readout_positions(EnergySTA)
    adapter: true
    shifter: {hidden_units: 16, hidden_layers: 2, gaze_scale_deg: 1.0}   # or null
    modulator: {hidden_units: 16}                                        # or null
    output: naka_rushton                                                 # or softplus | exp
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from models.v1.nets.adapter import SessionAdapter
from models.v1.nets.modulator import BehaviorModulator
from models.v1.nets.output import RateOutput
from models.v1.nets.readout import GaussianReadout
from models.v1.nets.shifter import Shifter
from training.toolkit.errors import UserError

log = logging.getLogger(__name__)
OUTSIDE_MAP_SHARE = 0.1  # more units than this starting outside a valid core's map: a warning, else info
Batch = Mapping[str, Mapping[str, torch.Tensor]]
NORM_LAYERS = (nn.GroupNorm, nn.LayerNorm)


@dataclass(frozen=True)
class SessionSpec:
    """What the network must know about a session before seeing data.

    `pixels_per_degree` and `frame_shape` (meta.json) are needed only by a shifter; `behavior_dim` only
    by a modulator.
    """

    name: str
    num_units: int
    unit_ids: Sequence[int]
    behavior_dim: int = 0
    pixels_per_degree: float | None = None
    frame_shape: Sequence[int] | None = None


def check_session_names(sessions: Sequence[SessionSpec]) -> None:
    """Session names key ModuleDicts: they must be unique and free of '.'."""
    names = [spec.name for spec in sessions]
    if not names or len(set(names)) != len(names) or any("." in name or not name for name in names):
        raise UserError(
            f"Session names must be unique, non-empty and contain no '.', got {names}; rename the sessions "
            "in the dataset configs (parent.yaml `sessions` and each <session>.yaml `session`)."
        )


def unknown_sessions(batch: Batch, known: Mapping[str, Any]) -> None:
    """Raise when the batch holds sessions the model has no readout for."""
    unknown = [name for name in batch if name not in known]
    if unknown:
        raise KeyError(
            f"Batch has sessions {unknown} that the model was not built for (known: {list(known)}); "
            "the model and data must use the same dataset configs (model.dataset_configs_path)."
        )


def check_keys(
    cls: type, config: Mapping[str, Any], key: str, provided: Sequence[str] = ()
) -> dict[str, Any]:
    """`config` as a dict, after checking every key is a constructor argument of `cls` (named in the error)."""
    allowed = set(inspect.signature(cls).parameters) - set(provided)
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise UserError(f"{key} has unknown keys {unknown}; {cls.__name__} takes {sorted(allowed)}.")
    return dict(config)


class MultiSessionNet(nn.Module):
    """Shared `core` + per-session `SessionAdapter`, `Shifter`, `BehaviorModulator` and `GaussianReadout`.

    `readout`, `shifter` and `modulator` are keyword dicts for each session's module (`shifter` may
    also give dataset-wide `pixels_per_degree` / `frame_shape`; a SessionSpec's own values win).
    `core` must expose `out_channels`; `output` is one of `output.OUTPUTS` (a `RateOutput` per session).
    """

    def __init__(
        self,
        sessions: Sequence[SessionSpec],
        core: nn.Module,
        readout: Mapping[str, Any] | None = None,
        adapter: bool = True,
        shifter: Mapping[str, Any] | None = None,
        modulator: Mapping[str, Any] | None = None,
        output: str = "softplus",
    ) -> None:
        super().__init__()
        check_session_names(sessions)
        if not hasattr(core, "out_channels"):
            raise UserError(f"model.core ({type(core).__name__}) must have an `out_channels` attribute.")
        self.outputs = nn.ModuleDict({s.name: RateOutput(output, s.num_units) for s in sessions})
        self.sessions = {spec.name: spec for spec in sessions}
        channels = int(core.out_channels)
        self.adapters = nn.ModuleDict({s.name: SessionAdapter() for s in sessions}) if adapter else None
        self.shifters = (
            nn.ModuleDict(
                {
                    s.name: self._build_shifter(s, check_keys(Shifter, shifter, "model.shifter"))
                    for s in sessions
                }
            )
            if shifter is not None
            else None
        )
        self.core = core
        self.modulator = (
            nn.ModuleDict({s.name: self._build_modulator(s, channels, modulator) for s in sessions})
            if modulator is not None
            else None
        )
        readout_kwargs = check_keys(
            GaussianReadout, readout or {}, "model.readout", ("num_units", "in_channels")
        )
        self.readouts = nn.ModuleDict(
            {s.name: GaussianReadout(s.num_units, channels, **readout_kwargs) for s in sessions}
        )

    @staticmethod
    def _build_shifter(spec: SessionSpec, config: dict[str, Any]) -> Shifter:
        for key in ("pixels_per_degree", "frame_shape"):
            if getattr(spec, key) is not None:
                config[key] = getattr(spec, key)
            if config.get(key) is None:
                raise UserError(
                    f"model.shifter needs {key} for session {spec.name!r}: pass it in the SessionSpec "
                    f"(from meta.json) or set model.shifter.{key}, or disable the shifter (model.shifter=null)."
                )
        return Shifter(**config)

    @staticmethod
    def _build_modulator(spec: SessionSpec, channels: int, config: Mapping[str, Any]) -> BehaviorModulator:
        if spec.behavior_dim <= 0:
            raise UserError(
                f"model.modulator is set but session {spec.name!r} has no behaviour (behavior_dim=0, no "
                "'behavior' in its meta.json); set model.modulator=null or use sessions with behaviour."
            )
        config = check_keys(BehaviorModulator, config, "model.modulator", ("behavior_dim", "num_channels"))
        return BehaviorModulator(spec.behavior_dim, channels, **config)

    @property
    def session_names(self) -> list[str]:
        return list(self.sessions)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """`{session: (B, N) expected spikes per bin}` for every session in the batch."""
        unknown_sessions(batch, self.sessions)
        names = list(batch)
        stims = [self._prepare_stim(name, batch[name]) for name in names]
        features = self.core(torch.cat(stims))
        frame_to_map = (stims[0].shape[-1] / features.shape[-1], stims[0].shape[-2] / features.shape[-2])
        rates = {}
        for name, session_features in zip(names, features.split([s.shape[0] for s in stims]), strict=True):
            if self.modulator is not None:
                session_features = self.modulator[name](session_features, self._behavior(name, batch[name]))
            rates[name] = self.outputs[name](self.readouts[name](session_features, frame_to_map))
        return rates

    def _prepare_stim(self, name: str, session: Mapping[str, torch.Tensor]) -> torch.Tensor:
        stim = session["stim"]
        if not stim.is_floating_point() or stim.ndim != 4:
            raise TypeError(
                f"Session {name!r}: 'stim' must be a float (B, L, H, W) tensor, got {stim.dtype} "
                f"{tuple(stim.shape)}; the DataModule's on_after_batch_transfer normalises the uint8 frames."
            )
        x = stim.unsqueeze(1)  # (B, 1, L, H, W): one luminance channel
        if self.adapters is not None:
            x = self.adapters[name](x)
        if self.shifters is not None:
            x = self.shifters[name](x, session["eyepos"])
        return x

    @staticmethod
    def _behavior(name: str, session: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if "behavior" not in session:
            raise UserError(
                f"model.modulator is set but the batch of session {name!r} has no 'behavior'; give the "
                "session behaviour data (behavior.npy + meta.json 'behavior') or set model.modulator=null."
            )
        return session["behavior"]

    # --- initialisation and regularisation -------------------------------------------------------
    @torch.no_grad()
    def init_readout_bias(self, session: str, mean_rates: torch.Tensor) -> None:
        """Set the session's readout bias so the output equals `mean_rates` (N,) when features read 0."""
        bias = self.readouts[session].bias
        if tuple(mean_rates.shape) != tuple(bias.shape):
            raise ValueError(
                f"init_readout_bias({session!r}): expected {tuple(bias.shape)} rates, got {tuple(mean_rates.shape)}."
            )
        bias.copy_(self.outputs[session].init_mean_rates(mean_rates.to(bias.device)))

    @torch.no_grad()
    def init_readout_positions(self, session: str, positions: torch.Tensor) -> None:
        """Start the session's readouts at (N, 2) `grid_sample` positions, e.g. `EnergySTA.positions()`."""
        mu = self.readouts[session].mu
        if tuple(positions.shape) != tuple(mu.shape):
            raise ValueError(
                f"init_readout_positions({session!r}): expected {tuple(mu.shape)} positions, got {tuple(positions.shape)}."
            )
        mu.copy_(positions.clamp(-1, 1))
        margin, frame_shape = getattr(self.core, "margin", 0), self.sessions[session].frame_shape
        if margin and frame_shape:
            height, width = frame_shape
            readable = positions.new_tensor([1 - 2 * margin / width, 1 - 2 * margin / height])
            outside = int((positions.abs() > readable).any(dim=1).sum())
            if outside:  # a few: units without a clear receptive field peak anywhere; many: a real mismatch
                level = logging.WARNING if outside > OUTSIDE_MAP_SHARE * len(positions) else logging.INFO
                log.log(
                    level,
                    "Session %r: %d of %d units start outside the %d x %d centre that model.core.padding=valid "
                    "computes (margin %d px) and read its edge. Use model.core.padding=same for sessions with "
                    "receptive fields near the frame's edge.",
                    session, outside, len(positions), width - 2 * margin, height - 2 * margin, margin,
                )  # fmt: skip

    def core_regularization(self) -> torch.Tensor:
        """The core's smoothness penalty (sum of squared Laplacians of its spatial kernels)."""
        return self.core.smoothness_penalty()

    def readout_regularization(self) -> torch.Tensor:
        """Per-unit L1 norm of readout features, averaged over all units of all sessions."""
        total_units = sum(spec.num_units for spec in self.sessions.values())
        weighted = [self.readouts[name].feature_l1() * spec.num_units for name, spec in self.sessions.items()]
        return torch.stack(weighted).sum() / total_units

    def shifter_regularization(self) -> torch.Tensor:
        """Mean squared shift (deg^2) of the last forward pass, averaged over sessions (0 without shifters)."""
        if self.shifters is None:
            return self.readouts[self.session_names[0]].bias.new_zeros(())
        return torch.stack([shifter.penalty() for shifter in self.shifters.values()]).mean()

    def no_weight_decay(self) -> set[str]:
        """Parameters that must not shrink towards 0: readout biases/sigmas/positions, norms, adapters."""
        names = {f"readouts.{s}.{p}" for s in self.sessions for p in ("bias", "sigma", "mu")}
        names |= {f"outputs.{name}" for name, _ in self.outputs.named_parameters()}
        if self.adapters is not None:
            names |= {f"adapters.{name}" for name, _ in self.adapters.named_parameters()}
        for module_name, module in self.core.named_modules():
            if isinstance(module, NORM_LAYERS):
                names |= {f"core.{module_name}.{p}" for p, _ in module.named_parameters(recurse=False)}
        return names
