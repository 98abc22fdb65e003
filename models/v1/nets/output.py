"""The output nonlinearity shared by every v1 model (rates must be > 0) and its inverse for bias init."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

OUTPUTS = ("softplus", "exp")
MIN_RATE = 1e-6  # spikes/bin; units that never fired get this rate, so the inverse stays finite


def check_output(name: str) -> str:
    """Return `name` when it is a known output nonlinearity, else raise naming the config key."""
    if name not in OUTPUTS:
        raise ValueError(f"model.output must be one of {OUTPUTS}, got {name!r}.")
    return name


def output_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Map readout logits to expected spikes per bin."""
    return {"softplus": F.softplus, "exp": torch.exp}[check_output(name)]


def inverse_output(name: str, rates: torch.Tensor) -> torch.Tensor:
    """The logits whose output is `rates`, e.g. the readout bias that reproduces mean rates at init."""
    rates = rates.double().clamp_min(MIN_RATE)
    if check_output(name) == "exp":
        return rates.log()
    # softplus^-1(r) = log(exp(r) - 1) = r + log(1 - exp(-r)), stable for small and large r.
    return rates + torch.log(-torch.expm1(-rates))
