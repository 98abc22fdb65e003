"""`UkiyoeGenerator`: z -> StyleGAN-style synthesis -> NCA initial state -> K NCA steps -> palette image."""

from __future__ import annotations

import torch
from torch import nn

from models.ukiyoe.nets.nca import ALPHA, IntegratedNCA
from models.ukiyoe.nets.palette import GumbelPalette
from models.ukiyoe.nets.stylegan import StyleGenerator


class UkiyoeGenerator(nn.Module):
    """The whole generator of the GAN. In training mode the palette draws hard straight-through Gumbel
    samples at its annealed temperature; in eval mode each pixel takes its most likely colour, so samples
    depend only on z (and the NCA's update noise).

    The synthesis network's alpha channel goes through a sigmoid shifted by `alive_bias`, so at
    initialisation every cell is alive (sigmoid(2) = 0.88 > the NCA's threshold) and the NCA can still
    learn to kill cells (dead cells read out as the palette's "paper" background)."""

    def __init__(
        self, style: StyleGenerator, nca: IntegratedNCA, palette: GumbelPalette, alive_bias: float = 2.0
    ) -> None:
        super().__init__()
        self.style = style
        self.nca = nca
        self.palette = palette
        self.alive_bias = alive_bias

    @property
    def z_dim(self) -> int:
        return self.style.z_dim

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Palette logits (B, P, R, R) after the NCA's K steps."""
        state, w = self.style(z)
        alpha = torch.sigmoid(state[:, ALPHA : ALPHA + 1] + self.alive_bias)
        state = torch.cat([state[:, :ALPHA], alpha, state[:, ALPHA + 1 :]], dim=1)
        return self.nca.logits(self.nca(state, w))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(image (B, 3, R, R) in [-1, 1], every pixel a palette colour; palette weights (B, P, R, R))."""
        logits = self.logits(z)
        if self.training:
            return self.palette(logits, hard=True)
        image = self.palette.argmax_image(logits)
        weights = nn.functional.one_hot(logits.argmax(dim=1), logits.shape[1]).permute(0, 3, 1, 2)
        return image, weights.to(image.dtype)
