"""Baselines with `MultiSessionNet`'s API (forward(batch) -> {session: rates}), trained by the same module.

- `NullNet`: each unit's mean rate (what bits/spike is measured against; it scores 0).
- `LNNet`: per unit a rank-R separable linear filter over (lags x pixels) + the output nonlinearity.
A single-session CNN is `MultiSessionNet` with one session; the oracle is the simulator's true rates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.v1.nets.core import LAPLACIAN
from models.v1.nets.network import Batch, SessionSpec, check_session_names, unknown_sessions
from models.v1.nets.output import RateOutput


class _PerSessionBaseline(nn.Module):
    """Shared plumbing: per-session units in `units.<session>`, output nonlinearity, bias init."""

    def __init__(self, sessions: Sequence[SessionSpec], units: Mapping[str, nn.Module], output: str) -> None:
        super().__init__()
        check_session_names(sessions)
        self.units = nn.ModuleDict(units)
        self.outputs = nn.ModuleDict({s.name: RateOutput(output, s.num_units) for s in sessions})

    @property
    def session_names(self) -> list[str]:
        return list(self.units)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        unknown_sessions(batch, self.units)
        return {
            name: self.outputs[name](self.units[name](session["stim"])) for name, session in batch.items()
        }

    @torch.no_grad()
    def init_readout_bias(self, session: str, mean_rates: torch.Tensor) -> None:
        bias = self.units[session].bias
        bias.copy_(self.outputs[session].init_mean_rates(mean_rates.to(bias.device)).reshape(bias.shape))

    def core_regularization(self) -> torch.Tensor:
        return self._zero()

    def readout_regularization(self) -> torch.Tensor:
        return self._zero()

    def shifter_regularization(self) -> torch.Tensor:
        return self._zero()

    def _zero(self) -> torch.Tensor:
        return next(self.parameters()).new_zeros(())

    def no_weight_decay(self) -> set[str]:
        return {f"units.{name}.bias" for name in self.units} | {
            f"outputs.{name}" for name, _ in self.outputs.named_parameters()
        }


class MeanRate(nn.Module):
    """One session's constant logits (N,); the stimulus only sets the batch size."""

    def __init__(self, num_units: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_units))

    def forward(self, stim: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(stim.shape[0], -1)


class NullNet(_PerSessionBaseline):
    """Per-unit mean rate: after `init_readout_bias` it already is the optimum, training keeps it there."""

    def __init__(self, sessions: Sequence[SessionSpec], output: str = "softplus") -> None:
        super().__init__(sessions, {s.name: MeanRate(s.num_units) for s in sessions}, output)


class SeparableFilters(nn.Module):
    """One session's units: logits = sum_r temporal[n, r] . (spatial[n, r] . frame at each lag) + bias."""

    def __init__(self, num_units: int, num_lags: int, frame_shape: Sequence[int], rank: int) -> None:
        super().__init__()
        height, width = frame_shape
        # Spatial filters start near 0 and temporal ones O(1), so the first gradients shape the RFs.
        self.temporal = nn.Parameter(torch.randn(num_units, rank, num_lags) / num_lags**0.5)
        self.spatial = nn.Parameter(1e-3 * torch.randn(num_units, rank, height, width))
        self.bias = nn.Parameter(torch.zeros(num_units))

    def forward(self, stim: torch.Tensor) -> torch.Tensor:
        projected = torch.einsum("blhw,nrhw->bnrl", stim, self.spatial)
        return torch.einsum("bnrl,nrl->bn", projected, self.temporal) + self.bias

    def smoothness_penalty(self) -> torch.Tensor:
        maps = self.spatial.reshape(-1, 1, *self.spatial.shape[-2:])
        return (
            F.conv2d(maps, LAPLACIAN.to(maps).view(1, 1, 3, 3), padding=1).square().sum(dim=(1, 2, 3)).mean()
        )


class LNNet(_PerSessionBaseline):
    """Per-unit linear-nonlinear model: a rank-`rank` space-time separable filter, then `output`.

    `core_regularization()` is the mean squared Laplacian of the spatial filters (smooth RFs), so the
    module's `regularization.core_smoothness` weight applies to it.
    """

    def __init__(
        self,
        sessions: Sequence[SessionSpec],
        num_lags: int = 8,
        frame_shape: Sequence[int] = (32, 32),
        rank: int = 2,
        output: str = "softplus",
    ) -> None:
        units = {s.name: SeparableFilters(s.num_units, num_lags, tuple(frame_shape), rank) for s in sessions}
        super().__init__(sessions, units, output)

    def core_regularization(self) -> torch.Tensor:
        return torch.stack([unit.smoothness_penalty() for unit in self.units.values()]).mean()
