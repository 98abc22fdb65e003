"""IntegratedNCA: a Growing Neural Cellular Automaton (Mordvintsev et al., Distill 2020), optionally style-conditioned.

State layout (B, C, H, W): channel `ALPHA` (0) is the alive channel, channels 1..3 are RGB (read out by
`rgba` for the grow experiment), the rest are hidden. A step: perceive (identity + Sobel x/y per channel),
a 1x1-conv update network whose last layer starts at zero (so an untrained NCA leaves its state as it is),
a per-cell Bernoulli(fire_rate) update mask, and alive masking (a cell lives while it or a neighbour has
alpha > alive_threshold, before and after the update). With `w_dim > 0` the hidden layer is FiLM-modulated
by a style vector w.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ALPHA = 0  # the alive channel
RGB = slice(1, 4)  # the colour channels the grow experiment reads out

# 3x3 Sobel kernels divided by 8, so a ramp of slope s reads as gradient s.
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
_IDENTITY = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
_KERNELS = torch.stack([_IDENTITY, _SOBEL_X, _SOBEL_X.T])  # (3, 3, 3): identity, d/dx, d/dy


def perceive(state: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 3C, H, W): per channel c, [c, d/dx c, d/dy c] (zero padding outside the canvas)."""
    channels = state.shape[1]
    kernels = _KERNELS.to(device=state.device, dtype=state.dtype).repeat(channels, 1, 1).unsqueeze(1)
    return F.conv2d(state, kernels, padding=1, groups=channels)


class IntegratedNCA(nn.Module):
    """K stochastic, alive-masked NCA steps; `logits` reads the state out as palette logits."""

    def __init__(
        self,
        state_channels: int = 16,
        hidden: int = 64,
        w_dim: int = 64,
        num_colors: int = 8,
        fire_rate: float = 0.5,
        alive_threshold: float = 0.1,
        steps: int = 8,
    ) -> None:
        super().__init__()
        if state_channels < 4:
            raise ValueError(
                f"IntegratedNCA: state_channels must be >= 4 (alpha + RGB), got {state_channels}."
            )
        if not 0.0 < fire_rate <= 1.0:
            raise ValueError(f"IntegratedNCA: fire_rate must be in (0, 1], got {fire_rate}.")
        self.state_channels = state_channels
        self.w_dim = w_dim
        self.fire_rate = fire_rate
        self.alive_threshold = alive_threshold
        self.steps = steps  # the curriculum widens it during training
        self.perception = nn.Conv2d(3 * state_channels, hidden, 1)
        self.update = nn.Conv2d(hidden, state_channels, 1)
        # "do nothing" at initialisation: training starts from a stable automaton (the paper's choice)
        nn.init.zeros_(self.update.weight)
        nn.init.zeros_(self.update.bias)
        self.film = nn.Linear(w_dim, 2 * hidden) if w_dim > 0 else None
        self.readout = nn.Conv2d(state_channels, num_colors, 1) if num_colors > 0 else None

    def alive_mask(self, state: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) bool: the cell or one of its 8 neighbours has alpha > alive_threshold."""
        alpha = state[:, ALPHA : ALPHA + 1]
        return F.max_pool2d(alpha, kernel_size=3, stride=1, padding=1) > self.alive_threshold

    def step(
        self, state: torch.Tensor, w: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One NCA step."""
        hidden = F.relu(self.perception(perceive(state)))
        if self.film is not None:
            if w is None:
                raise ValueError("IntegratedNCA was built with w_dim > 0: pass the style vector w.")
            gamma, beta = self.film(w)[:, :, None, None].chunk(2, dim=1)
            hidden = hidden * (1 + gamma) + beta
        update = self.update(hidden)
        batch, _, height, width = state.shape
        fire = torch.rand(
            (batch, 1, height, width), generator=generator, device=state.device, dtype=state.dtype
        )
        pre_life = self.alive_mask(state)
        state = state + update * (fire < self.fire_rate).to(state.dtype)
        post_life = self.alive_mask(state)
        return state * (pre_life & post_life).to(state.dtype)

    def forward(
        self,
        state: torch.Tensor,
        w: torch.Tensor | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The state after `steps` (default: `self.steps`) steps."""
        for _ in range(self.steps if steps is None else steps):
            state = self.step(state, w, generator)
        return state

    def logits(self, state: torch.Tensor) -> torch.Tensor:
        """(B, num_colors, H, W) palette logits of the state."""
        if self.readout is None:
            raise ValueError("IntegratedNCA was built with num_colors=0: it has no palette readout.")
        return self.readout(state)

    @staticmethod
    def rgba(state: torch.Tensor) -> torch.Tensor:
        """(B, 4, H, W) RGBA in the target's order (unclamped; the grow loss compares it to [0, 1] targets)."""
        return torch.cat([state[:, RGB], state[:, ALPHA : ALPHA + 1]], dim=1)
