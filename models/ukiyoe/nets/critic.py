"""`TransformerCritic`: a tiny ViT that scores images (B, 3, R, R) in [-1, 1] with one logit each.

Its score of generated images is the GAN's "reward". Non-overlapping patches are embedded by a strided
conv, a learned class token and learned position embeddings are added, a pre-norm transformer encoder
mixes them, and a linear head reads the class token (Dosovitskiy et al. 2021).
"""

from __future__ import annotations

import torch
from torch import nn


class TransformerCritic(nn.Module):
    """x (B, 3, resolution, resolution) -> logits (B,); `resolution` must be a multiple of `patch_size`."""

    def __init__(
        self,
        resolution: int = 32,
        patch_size: int = 4,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if resolution % patch_size:
            raise ValueError(
                f"TransformerCritic: resolution {resolution} is not a multiple of patch_size {patch_size}."
            )
        if dim % heads:
            raise ValueError(f"TransformerCritic: dim {dim} is not divisible by {heads} heads.")
        self.resolution = resolution
        num_patches = (resolution // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.empty(1, num_patches + 1, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=int(dim * mlp_ratio),
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.resolution, self.resolution):
            raise ValueError(
                f"TransformerCritic: built for {self.resolution}px images, got {tuple(x.shape[-2:])}."
            )
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1) + self.pos_embed
        return self.head(self.norm(self.encoder(tokens))[:, 0]).squeeze(1)
