"""`GumbelPalette`: per-pixel choice among P learnable colours, so every output pixel is a palette colour.

Like a woodblock print, the image is flat areas of a few pigments. In training a pixel's colour is drawn
by Gumbel-softmax at the annealed `temperature` and made hard with the straight-through estimator: the
value is exactly one palette colour, the gradient is that of the soft mixture (Jang et al. 2017). The
Gumbel sampling is written out (not `F.gumbel_softmax`) because that takes the temperature as a Python
float, and reading the annealed buffer on the host every batch would synchronise with the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.ukiyoe.schema import PIGMENTS
from training.toolkit.errors import UserError

# Colours live in (-1, 1) through tanh; pigments at the sRGB extremes start just inside the range.
EDGE = 1.0 - 1e-3


class GumbelPalette(nn.Module):
    """Palette logits (B, P, H, W) -> image (B, 3, H, W) in [-1, 1] and the per-pixel colour weights.

    `init` names the pigments of `models.ukiyoe.schema.PIGMENTS` to start from (default: the
    first `num_colors`). `temperature` is a buffer (checkpointed) that the annealing callback sets in place.
    """

    def __init__(
        self, num_colors: int = 8, init: Sequence[str] | None = None, temperature: float = 1.0
    ) -> None:
        super().__init__()
        names = list(PIGMENTS)[:num_colors] if init is None else list(init)
        unknown = [name for name in names if name not in PIGMENTS]
        if unknown:
            raise UserError(
                f"GumbelPalette: unknown pigments {unknown} in the palette `init`; choose from {list(PIGMENTS)}."
            )
        if len(names) != num_colors:
            raise UserError(
                f"GumbelPalette: the palette has num_colors={num_colors} but `init` names {len(names)} "
                f"pigments ({len(PIGMENTS)} exist: {list(PIGMENTS)}); make the two agree."
            )
        rgb = torch.tensor([PIGMENTS[name] for name in names], dtype=torch.float32) / 127.5 - 1.0
        self.raw_colors = nn.Parameter(torch.atanh(rgb.clamp(-EDGE, EDGE)))
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self.num_colors = num_colors

    def colors(self) -> torch.Tensor:
        """The palette (P, 3) in [-1, 1]."""
        return torch.tanh(self.raw_colors)

    def paint(self, index: torch.Tensor) -> torch.Tensor:
        """Colour index map (B, H, W) -> image (B, 3, H, W) whose pixels are exactly palette colours."""
        return F.embedding(index, self.colors()).permute(0, 3, 1, 2)

    def forward(self, logits: torch.Tensor, hard: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (image (B, 3, H, W), weights (B, P, H, W)).

        Training samples Gumbel noise; eval uses the logits alone (the tempered softmax, whose argmax is
        `argmax_image`). With `hard`, the weights are one-hot in value (straight-through) and the image is
        exactly the chosen colours; without, both are the soft mixture.
        """
        if self.training:
            gumbels = -torch.empty_like(logits).exponential_().log()
            logits = logits + gumbels
        soft = torch.softmax(logits / self.temperature, dim=1)
        soft_image = torch.einsum("bphw,pc->bchw", soft, self.colors())
        if not hard:
            return soft_image, soft
        index = soft.argmax(dim=1)
        one_hot = F.one_hot(index, self.num_colors).permute(0, 3, 1, 2).to(soft.dtype)
        # a + (b - b.detach()) has the value of a exactly and the gradient of b.
        image = self.paint(index) + (soft_image - soft_image.detach())
        return image, one_hot + (soft - soft.detach())

    def argmax_image(self, logits: torch.Tensor) -> torch.Tensor:
        """Deterministic image (B, 3, H, W): each pixel takes the colour of its largest logit."""
        return self.paint(logits.argmax(dim=1))
