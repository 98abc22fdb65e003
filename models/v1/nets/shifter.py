"""Gaze-dependent image shift: corrects a session's eye-tracker calibration error before the core.

The stored stimulus is cropped at the *measured* gaze; the neurons saw the image at the *true* gaze.
An MLP maps each lag frame's measured gaze (deg) to a shift (deg), and the frame is resampled with
`grid_sample` so that `shifted(p) = stim(p + shift)` (p, shift in image axes: +x right, +y down).
If the tracker reads `error = measured - true` (image axes), the ideal shift is `-error`.
The last layer is zero-initialised, so the shifter starts as the identity (zero shift).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def pixel_centre_grid(height: int, width: int) -> torch.Tensor:
    """(H, W, 2) normalised (x, y) coordinates of pixel centres, as `grid_sample(align_corners=False)` uses."""
    ys = (2 * torch.arange(height, dtype=torch.float32) + 1) / height - 1
    xs = (2 * torch.arange(width, dtype=torch.float32) + 1) / width - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)


class Shifter(nn.Module):
    """Gaze (B, L, 2) deg -> shift (B, L, 2) deg -> every lag frame of the stimulus translated by it.

    `gaze_scale_deg` divides the gaze; set it to about the gaze range, so the gazes span the tanh's bend:
    where they all fall in its linear range, the MLP is an affine map of the gaze and misses the calibration
    field's curvature (docs/v1.md). `last_shift` keeps the shifts of the last forward pass for `penalty()`.
    """

    def __init__(
        self,
        pixels_per_degree: float,
        frame_shape: Sequence[int],
        hidden_units: int = 16,
        hidden_layers: int = 2,
        gaze_scale_deg: float = 1.0,
    ) -> None:
        super().__init__()
        height, width = (int(size) for size in frame_shape)
        self.pixels_per_degree = float(pixels_per_degree)
        self.frame_shape = (height, width)
        self.gaze_scale_deg = float(gaze_scale_deg)
        layers: list[nn.Module] = []
        width_in = 2
        for _ in range(hidden_layers):
            layers += [nn.Linear(width_in, hidden_units), nn.Tanh()]
            width_in = hidden_units
        last = nn.Linear(width_in, 2)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(*layers, last)
        self.register_buffer("base_grid", pixel_centre_grid(height, width), persistent=False)
        # Degrees -> normalised units per axis: a shift of W/2 pixels spans half the frame (1.0).
        scale = [2 * self.pixels_per_degree / width, 2 * self.pixels_per_degree / height]
        self.register_buffer("deg_to_normalised", torch.tensor(scale), persistent=False)
        self.last_shift: torch.Tensor | None = None

    def shift_deg(self, gaze: torch.Tensor) -> torch.Tensor:
        """The learned shift (deg, image axes) for measured gazes (..., 2) in degrees."""
        return self.mlp(gaze / self.gaze_scale_deg)

    def forward(self, stim: torch.Tensor, gaze: torch.Tensor) -> torch.Tensor:
        """Shift each lag frame of `stim` (B, C, L, H, W) by the shift predicted from `gaze` (B, L, 2)."""
        batch, channels, lags, height, width = stim.shape
        if (height, width) != self.frame_shape:
            raise ValueError(
                f"Shifter was built for frames of {self.frame_shape} but got {(height, width)}; "
                "the session's meta.json frame_shape must match the dataset's frame_shape."
            )
        shift = self.shift_deg(gaze)
        self.last_shift = shift
        offset = (shift * self.deg_to_normalised).reshape(batch * lags, 1, 1, 2)
        frames = stim.transpose(1, 2).reshape(batch * lags, channels, height, width)
        shifted = F.grid_sample(
            frames, self.base_grid + offset, mode="bilinear", padding_mode="border", align_corners=False
        )
        return shifted.reshape(batch, lags, channels, height, width).transpose(1, 2)

    def penalty(self) -> torch.Tensor:
        """Mean squared shift (deg^2) of the last forward pass; 0 before any."""
        if self.last_shift is None:
            return self.base_grid.new_zeros(())
        return self.last_shift.square().mean()
