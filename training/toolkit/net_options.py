"""`compile` and `channels_last` for a LightningModule whose architecture is `self.net` (both hparams)."""

from __future__ import annotations

import torch


class NetOptions:
    """Mix in before `pl.LightningModule`; modules that override `setup` call `super().setup(stage)`."""

    _net_compiled = False

    def setup(self, stage: str) -> None:
        if self.hparams.get("channels_last"):
            self.net.to(memory_format=torch.channels_last)
        # In place, so state_dict keys stay `net.*` (no `_orig_mod.`); in setup rather than configure_model,
        # which EMAWeightAveraging warns about.
        if self.hparams.get("compile") and not self._net_compiled:
            self.net.compile()
            self._net_compiled = True

    def net_input(self, x: torch.Tensor) -> torch.Tensor:
        """`x` in the memory format the net was put in."""
        return x.contiguous(memory_format=torch.channels_last) if self.hparams.get("channels_last") else x
