"""The output nonlinearity shared by every v1 model: readout logits -> expected spikes per bin (> 0).

- `softplus`, `exp`: fixed functions; the readout bias sets each unit's mean rate.
- `naka_rushton`: the simple cell's own form, half-squaring (Heeger 1992) through a saturating contrast
  response (Albrecht & Hamilton 1982) above a floor: with drive q = relu(logit)^2,
  rate = floor + q / (1 + q / saturation), floor and saturation learned per unit. Neither softplus nor exp
  can saturate, and the simulator's units do (drive / (1 + drive / s) with s = 3-8 times the mean): on T0
  a per-unit LN model recovers 0.740 of the oracle with softplus (rank 2), 0.856 half-squared and 0.890
  with this (rank 1), the single-session CNN 0.851 with softplus and 0.885 with this (docs/v1.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

NAKA_RUSHTON = "naka_rushton"
FIXED = ("softplus", "exp")
OUTPUTS = (*FIXED, NAKA_RUSHTON)
MIN_RATE = 1e-6  # spikes/bin; units that never fired get this rate, so the inverse stays finite
# naka_rushton at init: half of each unit's mean rate is its floor, half comes from the drive, and the
# saturation sits far above (50x the mean), so training starts from plain half-squaring and learns it.
FLOOR_SHARE, SATURATION_X_MEAN = 0.5, 50.0


def check_output(name: str) -> str:
    """Return `name` when it is a known output nonlinearity, else raise naming the config key."""
    if name not in OUTPUTS:
        raise ValueError(f"model.net.output must be one of {OUTPUTS}, got {name!r}.")
    return name


def output_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Map readout logits to expected spikes per bin with a fixed (parameter-free) nonlinearity."""
    if name not in FIXED:
        raise ValueError(f"output_activation({name!r}): a fixed output is one of {FIXED}; use RateOutput.")
    return {"softplus": F.softplus, "exp": torch.exp}[name]


def inverse_output(name: str, rates: torch.Tensor) -> torch.Tensor:
    """The logits whose fixed output is `rates`, e.g. the readout bias that reproduces mean rates at init."""
    rates = rates.double().clamp_min(MIN_RATE)
    if name == "exp":
        return rates.log()
    output_activation(name)  # raises for anything but softplus
    # softplus^-1(r) = log(exp(r) - 1) = r + log(1 - exp(-r)), stable for small and large r.
    return rates + torch.log(-torch.expm1(-rates))


class RateOutput(nn.Module):
    """One session's output nonlinearity; `naka_rushton` holds its units' floor and saturation.

    Parameters are stored through softplus (positive): `floor` and `saturation` (N,), in spikes per bin.
    Fixed outputs hold no parameters, so their checkpoints keep the layout they had before this class.
    """

    def __init__(self, name: str, num_units: int) -> None:
        super().__init__()
        self.name = check_output(name)
        if self.name == NAKA_RUSHTON:
            self.floor = nn.Parameter(torch.zeros(num_units))
            self.saturation = nn.Parameter(torch.zeros(num_units))
        else:
            self.activation = output_activation(self.name)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        if self.name != NAKA_RUSHTON:
            return self.activation(logits)
        drive = F.relu(logits).square()
        return F.softplus(self.floor) + drive / (1 + drive / F.softplus(self.saturation))

    @torch.no_grad()
    def init_mean_rates(self, rates: torch.Tensor) -> torch.Tensor:
        """Set this output's parameters for units of mean `rates` (N,) and return the logits (float64)
        that give exactly those rates, the readout bias to start from when features read 0."""
        if self.name != NAKA_RUSHTON:
            return inverse_output(self.name, rates)
        rates = rates.double().clamp_min(MIN_RATE)
        floor, saturation = FLOOR_SHARE * rates, SATURATION_X_MEAN * rates
        self.floor.copy_(inverse_output("softplus", floor))
        self.saturation.copy_(inverse_output("softplus", saturation))
        # Solve floor + q / (1 + q / s) = rate for the drive q, with the stored (float32-rounded) values.
        floor, saturation = F.softplus(self.floor.double()), F.softplus(self.saturation.double())
        excess = (rates - floor).clamp_min(0)  # >= 0 up to the float32 rounding of the floor
        return (excess / (1 - excess / saturation)).sqrt()
