"""`MetaTokens`: V_Meta (goal, format, tone) as a short token sequence for the decoder's cross-attention.

One token per field: a goal embedding, a format embedding and an MLP of the tone. Each field also has a
learned NULL token; a sample (or one field of it) whose condition is dropped gets the NULL tokens, which is
how the decoder learns the unconditional prediction that classifier-free guidance contrasts with.
"""

from __future__ import annotations

import torch
from torch import nn

from models.design.schema import FORMAT_NAMES, GOALS, TONE_AXES

NUM_META_TOKENS = 3  # goal, format, tone


class MetaTokens(nn.Module):
    """(goal (B,), format (B,), tone (B, 2)) -> tokens (B, 3, dim); `drop` swaps in the NULL tokens."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.dim = dim
        self.goal = nn.Embedding(len(GOALS), dim)
        self.format = nn.Embedding(len(FORMAT_NAMES), dim)
        self.tone = nn.Sequential(nn.Linear(len(TONE_AXES), dim), nn.SiLU(), nn.Linear(dim, dim))
        self.null = nn.Parameter(torch.randn(NUM_META_TOKENS, dim) * 0.02)

    def forward(
        self,
        goal: torch.Tensor,
        format: torch.Tensor,
        tone: torch.Tensor,
        drop: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tokens (B, 3, dim). `drop` is a bool tensor: (B,) drops every field of a sample, (B, 3) single
        fields (goal, format, tone); dropped tokens are the NULL tokens."""
        tokens = torch.stack([self.goal(goal), self.format(format), self.tone(tone.to(self.null.dtype))], 1)
        if drop is None:
            return tokens
        if drop.dim() == 1:
            drop = drop[:, None].expand(-1, NUM_META_TOKENS)
        return torch.where(drop[..., None], self.null.to(tokens.dtype), tokens)

    def null_tokens(self, batch_size: int) -> torch.Tensor:
        """The unconditional tokens (batch_size, 3, dim): every field dropped."""
        return self.null[None].expand(batch_size, -1, -1)
