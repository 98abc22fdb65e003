"""`ConditionalUNet`: the decoder's noise predictor eps(x_t, t, meta tokens).

A DDPM U-Net: residual blocks (GroupNorm, SiLU, conv) with the sinusoidal time embedding added in each,
down/up levels joined by skips, and at the lower resolutions an attention block whose cross-attention
reads the V_Meta tokens (optionally preceded by self-attention). The mean of the tokens is also added
to the time embedding, so every residual block sees the condition, not only the attention levels.
Blocks first, then the network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of integer (or real) timesteps (B,), as in "Attention is all you need"."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=timesteps.device) / half)
    angles = timesteps.float()[:, None] * frequencies[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    if channels % min(groups, channels):
        raise ValueError(f"ConditionalUNet: {channels} channels do not split into {groups} norm groups.")
    return nn.GroupNorm(min(groups, channels), channels)


def zero_init(module: nn.Module) -> nn.Module:
    """Zero a block's output layer so that each residual branch starts as the identity."""
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time(+condition) embedding added between the convs."""

    def __init__(
        self, in_channels: int, out_channels: int, emb_dim: int, groups: int, dropout: float
    ) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_channels)
        self.norm2 = group_norm(out_channels, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_init(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head attention of `x` (B, N, dim) on `context` (B, M, context_dim); self-attention if None."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"ConditionalUNet: attention width {dim} is not divisible by {heads} heads.")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(context_dim or dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        batch, length, dim = x.shape
        keys, values = self.to_kv(x if context is None else context).chunk(2, dim=-1)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, -1, self.heads, dim // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.to_q(x)), split(keys), split(values))
        return self.to_out(out.transpose(1, 2).reshape(batch, length, dim))


class AttentionBlock(nn.Module):
    """Pre-norm transformer layer on the feature map's pixels: [self-attention], cross-attention on the
    meta tokens, feed-forward; its output projection is zero-initialised (starts as the identity)."""

    def __init__(
        self, channels: int, context_dim: int, heads: int, groups: int, self_attention: bool
    ) -> None:
        super().__init__()
        self.norm = group_norm(channels, groups)
        self.proj_in = nn.Linear(channels, channels)
        self.self_norm = nn.LayerNorm(channels) if self_attention else None
        self.self_attn = Attention(channels, heads) if self_attention else None
        self.cross_norm = nn.LayerNorm(channels)
        self.cross_attn = Attention(channels, heads, context_dim)
        self.ff_norm = nn.LayerNorm(channels)
        self.ff = nn.Sequential(
            nn.Linear(channels, 4 * channels), nn.GELU(), nn.Linear(4 * channels, channels)
        )
        self.proj_out = zero_init(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        h = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))
        if self.self_attn is not None:
            h = h + self.self_attn(self.self_norm(h))
        h = h + self.cross_attn(self.cross_norm(h), context)
        h = h + self.ff(self.ff_norm(h))
        return x + self.proj_out(h).transpose(1, 2).reshape(batch, channels, height, width)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Stage(nn.Module):
    """One resolution step of the U-Net: a residual block, then an attention block at attention levels."""

    def __init__(self, res: ResBlock, attention: AttentionBlock | None) -> None:
        super().__init__()
        self.res = res
        self.attention = attention

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.res(x, emb)
        return x if self.attention is None else self.attention(x, context)


class ConditionalUNet(nn.Module):
    """Predicts the noise eps in x_t (B, C, H, W) at timesteps t (B,) given meta tokens (B, M, context_dim).

    `channel_mults[i]` scales `channels` at level i (level i has resolution H / 2**i); `attention_levels`
    lists the levels that get cross-attention (and self-attention when `self_attention`); the middle block
    always has it. H and W must be divisible by 2**(len(channel_mults) - 1).
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 32,
        channel_mults: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 1,
        attention_levels: Sequence[int] = (1, 2),
        context_dim: int = 64,
        heads: int = 4,
        self_attention: bool = True,
        norm_groups: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        bad_levels = sorted(set(attention_levels) - set(range(len(channel_mults))))
        if bad_levels:
            raise ValueError(
                f"ConditionalUNet: attention_levels {bad_levels} are not levels of channel_mults "
                f"{list(channel_mults)} (levels 0..{len(channel_mults) - 1})."
            )
        self.channels = channels
        self.num_levels = len(channel_mults)
        emb_dim = 4 * channels
        self.time_mlp = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.context_to_emb = nn.Linear(context_dim, emb_dim)

        def stage(cin: int, cout: int, level: int) -> Stage:
            attention = (
                AttentionBlock(cout, context_dim, heads, norm_groups, self_attention)
                if level in attention_levels
                else None
            )
            return Stage(ResBlock(cin, cout, emb_dim, norm_groups, dropout), attention)

        self.conv_in = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skip_channels = [channels]
        width = channels
        for level, mult in enumerate(channel_mults):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(stage(width, channels * mult, level))
                width = channels * mult
                skip_channels.append(width)
            self.down.append(blocks)
            if level < self.num_levels - 1:
                self.downsample.append(Downsample(width))
                skip_channels.append(width)

        self.mid_res1 = ResBlock(width, width, emb_dim, norm_groups, dropout)
        self.mid_attention = AttentionBlock(width, context_dim, heads, norm_groups, self_attention)
        self.mid_res2 = ResBlock(width, width, emb_dim, norm_groups, dropout)

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                blocks.append(stage(width + skip_channels.pop(), channels * mult, level))
                width = channels * mult
            self.up.append(blocks)
            if level > 0:
                self.upsample.append(Upsample(width))

        self.norm_out = group_norm(width, norm_groups)
        self.conv_out = zero_init(nn.Conv2d(width, in_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """eps prediction (B, C, H, W); `timesteps` is (B,) or a scalar shared by the batch."""
        factor = 2 ** (self.num_levels - 1)
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(
                f"ConditionalUNet with {self.num_levels} levels needs H and W divisible by {factor}; "
                f"got {tuple(x.shape[-2:])}."
            )
        timesteps = timesteps.expand(x.shape[0]) if timesteps.dim() == 0 else timesteps
        emb = self.time_mlp(timestep_embedding(timesteps, self.channels).to(x.dtype))
        emb = emb + self.context_to_emb(context.mean(dim=1))

        h = self.conv_in(x)
        skips = [h]
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb, context)
                skips.append(h)
            if level < self.num_levels - 1:
                h = self.downsample[level](h)
                skips.append(h)

        h = self.mid_res2(self.mid_attention(self.mid_res1(h, emb), context), emb)

        for index, blocks in enumerate(self.up):
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb, context)
            if index < self.num_levels - 1:
                h = self.upsample[index](h)
        return self.conv_out(F.silu(self.norm_out(h)))
