"""The Yates-Lab VisionCore input stages: the per-session `AffineAdapter` and the shared `LearnableTemporalConv`
(`models/modules/frontend.py`, code of 2025-10-21 onward), with the names its checkpoints use.

Their stimulus is (B, C, L, H, W) with lag 0 (the current frame) first and the oldest frame last.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.v1.nets.visioncore.layers import StandardConv
from training.toolkit.errors import UserError


class AffineAdapter(nn.Module):
    """A per-session zoom onto a `grid_size`² grid: blur each frame by a Gaussian of width
    sqrt(σ_min² + softplus(log_sigma)²) (σ_min = 0.44 (1/s − 1) when zooming in by s < 1), then resample
    at `base grid · softplus(log_scale)` (x, y), bilinear, align_corners=True, zeros outside.

    The seed's blur kernel has k + 1 taps at offsets -(k//2 + 1) … k//2 (k = round(6σ) made odd) with
    padding k//2, so each pass shrinks the frame by one pixel and shifts it by half a pixel; σ enters as
    a Python float (no gradient reaches `log_sigma`). Kept as it is: the trained weights expect it.
    """

    def __init__(self, grid_size: int = 51, init_sigma: float = 1.0, transform: str = "scale") -> None:
        super().__init__()
        if transform != "scale":
            raise UserError(
                f"adapter.params.transform={transform!r}: only 'scale' is ported (every shipped config)."
            )
        self.grid_size = int(grid_size)
        self.log_sigma = nn.Parameter(torch.tensor(math.log(math.expm1(init_sigma))))
        self.log_scale = nn.Parameter(torch.zeros(2))
        self._sigma: tuple[tuple[int, ...], float] | None = None  # (parameter versions, sigma)

    def sigma(self) -> float:
        """The blur width in pixels, a Python float as in the seed. Read from the device again only when the
        parameters changed (an optimizer step, a load): evaluation makes no host read per batch; training one
        per step, which the seed's data-dependent kernel size needs."""
        versions = (self.log_sigma._version, self.log_scale._version, self.log_scale.data_ptr())
        if self._sigma is None or self._sigma[0] != versions:
            scales = torch.stack(
                [F.softplus(self.log_scale.detach()).min(), F.softplus(self.log_sigma.detach())]
            )
            smallest, width = scales.tolist()  # one host read for both
            sigma_min = 0.0 if smallest >= 1 else 0.44 * (1.0 / smallest - 1.0)
            self._sigma = (versions, math.sqrt(sigma_min**2 + width**2))
        return self._sigma[1]

    @staticmethod
    def blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
        """(N, S, H, W) -> (N, S, H - 1, W - 1): the seed's separable zero-padded Gaussian (see the class)."""
        taps = int(round(sigma * 6)) | 1
        offsets = torch.arange(-taps // 2, taps // 2 + 1, dtype=frames.dtype, device=frames.device)
        kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
        kernel = kernel / kernel.sum()
        channels = frames.shape[1]
        rows = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
        cols = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
        frames = F.conv2d(frames, rows, padding=(taps // 2, 0), groups=channels)
        return F.conv2d(frames, cols, padding=(0, taps // 2), groups=channels)

    def forward(self, stim: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = stim.shape
        x = stim.reshape(batch * channels, frames, height, width)
        sigma = self.sigma()
        if sigma >= 1e-3:
            x = self.blur(x, sigma)
        # float32 as in the seed (a buffer built at the default dtype), whatever the model's dtype
        line = torch.linspace(-1, 1, self.grid_size, dtype=torch.float32, device=x.device).to(x.dtype)
        grid_y, grid_x = torch.meshgrid(line, line, indexing="ij")
        grid = torch.stack((grid_x, grid_y), dim=-1) * F.softplus(self.log_scale).to(x.dtype)
        x = F.grid_sample(
            x, grid.expand(x.shape[0], -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=True
        )
        return x.reshape(batch, channels, frames, self.grid_size, self.grid_size)


class LearnableTemporalConv(nn.Module):
    """`temporal_conv`: a valid (unpadded) convolution along the lag axis at every pixel, `num_channels`
    filters of `kernel_size` taps (L lags in, L - K + 1 out), optionally windowed and weight-normed."""

    def __init__(
        self,
        in_channels: int = 1,
        kernel_size: int = 16,
        num_channels: int = 4,
        bias: bool = False,
        aa_signal: bool = False,
        aa_window: str = "hann",
        aa_window_kwargs: Mapping[str, Any] | None = None,
        use_weight_norm: bool = False,
        keep_unit_norm: bool = False,
        split_MP: bool = False,  # noqa: N803 - the seed's key
        causal: bool = True,
        init_type: str | None = None,
        **unused: Any,
    ) -> None:
        super().__init__()
        if split_MP:
            raise UserError("frontend.params.split_MP=true (a Laplacian-pyramid split) is not ported.")
        if in_channels != 1:
            raise UserError(f"frontend: {in_channels} input channels; the ported temporal conv takes 1.")
        self.kernel_size = int(kernel_size)
        self.temporal_conv = StandardConv(
            in_channels,
            num_channels,
            (self.kernel_size, 1, 1),
            bias=bias,
            use_weight_norm=use_weight_norm,
            keep_unit_norm=keep_unit_norm,
            aa_signal=aa_signal,
            aa_window=aa_window,
            aa_window_kwargs=aa_window_kwargs,
        )
        self.out_channels = int(num_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] < self.kernel_size:
            raise UserError(
                f"The stimulus has {x.shape[2]} lags but the temporal filters span {self.kernel_size}; give the "
                "sessions at least that many lags (the seed trained on 25-33)."
            )
        return self.temporal_conv(x)
