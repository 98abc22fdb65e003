"""The Yates-Lab VisionCore's network code before 2025-10-20: "era A" (2025-10-08 … 10-13, commit e482ece)
and "era B" (10-13 … 10-20, commit 32efae1), which its `learned_res_small*` and `core_res*` configs ran on,
with the names their checkpoints use. Era B differs from A where `era="B"` says so: its 1-D front end is a
`temporal_conv.conv` windowed once when `aa_signal` (no FFT); its convolutions may carry torch's weight norm
(`original0` = g, `original1` = v) and, with `aa_signal`, a Hann window on every kernel axis (a 3-tap axis
keeps its centre tap only); its RMS norms have γ/β; its soft-pool weights are exp(x / 10); `avg` pools halve
time too; its shortcuts are bare `Conv3d`s; its ConvGRU group-normalises conv_h(h), starts at a learned
`h0` and uses its reset gate (the modulators and recurrences: early_recurrence.py).

What differs from the later code (layers.py, frontend.py, recurrence.py): the temporal front end is a
`Conv1d` whose weight is anti-aliased at every forward (a Hann window, an FFT low-pass, the window again);
convolutions are plain; RMSNorm has no scale or shift; the pool is a blur + soft-pool + squeeze-excitation
(`aablur`); a residual block crops both paths to the smaller and its projection shortcut is a
`Sequential(Conv3d, Identity)`; the ConvGRU is one `cell` with `conv_x` (bias) and `conv_h` (no bias)
whose reset gate is computed but unused, and it returns only its final state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.v1.nets.visioncore.layers import ACTIVATIONS, RMSNorm, _triple
from training.toolkit.errors import UserError


def antialiased_kernel(weight: torch.Tensor, cutoff: float = 0.45, transition: float = 0.05) -> torch.Tensor:
    """`hann ⊙ irfft(rfft(hann ⊙ w, n) ⊙ lowpass, n)[:K]` along the last axis, n = 2^ceil(log2(2K)), the
    low-pass a raised cosine from `cutoff` to `cutoff + transition` cycles per sample."""
    taps = weight.shape[-1]
    n = torch.arange(taps, dtype=weight.dtype, device=weight.device)
    hann = 0.5 - 0.5 * torch.cos(2 * math.pi * n / (taps - 1))
    size = 2 ** math.ceil(math.log2(taps * 2))
    freqs = torch.fft.rfftfreq(size, dtype=weight.dtype, device=weight.device)
    lowpass = torch.where(
        freqs <= cutoff,
        torch.ones_like(freqs),
        torch.where(
            freqs >= cutoff + transition,
            torch.zeros_like(freqs),
            0.5 * (1 + torch.cos(math.pi * (freqs - cutoff) / transition)),
        ),
    )
    filtered = torch.fft.irfft(torch.fft.rfft(weight * hann, n=size) * lowpass, n=size)[..., :taps]
    return filtered * hann


class TemporalConvA(nn.Module):
    """`temporal_conv`: a Conv1d of `num_channels` filters along the lag axis at every pixel (valid: L - K + 1
    lags out; output channel c · num_channels + k), its weight anti-aliased when `anti_aliasing`."""

    def __init__(
        self,
        in_channels: int = 1,
        kernel_size: int = 16,
        num_channels: int = 4,
        bias: bool = False,
        anti_aliasing: bool = True,
        **unused: Any,
    ) -> None:
        super().__init__()
        self.temporal_conv = nn.Conv1d(1, num_channels, kernel_size, bias=bias)
        self.anti_aliasing = anti_aliasing
        self.kernel_size = int(kernel_size)
        self.out_channels = in_channels * int(num_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.temporal_conv.weight
        if self.anti_aliasing:
            weight = antialiased_kernel(weight)
        return _lag_conv(x, weight, self.temporal_conv.bias, self.kernel_size)


class BlurSoftPoolSE(nn.Module):
    """`aablur`: each frame blurred by [1,2,1]⊗[1,2,1]/16 (zero padding 1), soft-pooled (2×2,
    `avgpool(x·eˣ) / (avgpool(eˣ) + 1e-6)`, `stride`), then gated by squeeze-excitation (mean over space per
    frame, 1×1×1 conv to C/r, SiLU, conv back, sigmoid)."""

    def __init__(
        self, channels: int, stride: int = 2, r: int = 8, use_soft: bool = True, era: str = "A", **unused: Any
    ) -> None:
        super().__init__()
        self.temperature = 10.0 if era == "B" else 1.0
        if not use_soft:
            raise UserError(
                "pool_params.use_soft=false is not ported (the learned_res_small configs use true)."
            )
        self.stride = int(stride)
        kernel = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("blur", (kernel[:, None] * kernel[None, :] / 16).view(1, 1, 3, 3))
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool3d((None, 1, 1)),
            nn.Conv3d(channels, channels // r, 1),
            nn.SiLU(),
            nn.Conv3d(channels // r, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = x.shape
        frames_2d = x.transpose(1, 2).reshape(-1, 1, height, width)
        frames_2d = F.conv2d(frames_2d, self.blur.to(x.dtype), padding=1)
        weights = (frames_2d / self.temperature).exp()
        pooled = F.avg_pool2d(frames_2d * weights, 2, self.stride) / (
            F.avg_pool2d(weights, 2, self.stride) + 1e-6
        )
        pooled = pooled.reshape(batch, frames, channels, *pooled.shape[-2:]).transpose(1, 2)
        return pooled * self.se(pooled)


def hann_window(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """Era B's forward-time window: a symmetric Hann scaled to peak 1 on every axis of `shape`, separable."""
    mask = torch.ones((), dtype=dtype)
    for axis, taps in enumerate(shape):
        values = torch.signal.windows.hann(taps, sym=True, dtype=dtype)
        view = [1] * len(shape)
        view[axis] = taps
        mask = mask * (values / values.max().clamp_min(1e-8)).view(view)
    return mask


class WindowedConv(nn.Module):
    """Era B's `conv`: a Conv3d (torch weight norm when `use_weight_norm`) whose weight is multiplied by
    `hann_window` over its kernel at every forward when `aa_signal`."""

    def __init__(
        self, conv: nn.Conv3d, aa_signal: bool, use_weight_norm: bool, weight_norm_dim: int = 0
    ) -> None:
        super().__init__()
        self.conv = (
            nn.utils.parametrizations.weight_norm(conv, dim=weight_norm_dim) if use_weight_norm else conv
        )
        self.aa_signal = aa_signal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.conv.weight
        if self.aa_signal:
            weight = weight * hann_window(weight.shape[2:], weight.dtype)
        return self.conv._conv_forward(x, weight, self.conv.bias)


class PlainConv(nn.Module):
    """`conv`: the block's Conv3d."""

    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DepthwiseConv(nn.Module):
    """`depthwise` (one filter per channel, no bias) then `pointwise` (1×1×1 to `out_channels`)."""

    def __init__(
        self, in_channels, out_channels, kernel, stride, dilation, bias: bool, aa_signal: bool = False
    ) -> None:
        super().__init__()
        self.depthwise = nn.Conv3d(
            in_channels, in_channels, kernel, stride, 0, dilation, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv3d(in_channels, out_channels, 1, bias=bias)
        self.aa_signal = aa_signal  # era B: the depthwise kernel only is windowed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.depthwise.weight
        if self.aa_signal:
            weight = weight * hann_window(weight.shape[2:], weight.dtype)
        return self.pointwise(self.depthwise._conv_forward(x, weight, None))


class ConvBlockA(nn.Module):
    """pad (replicate; time causal by dilation · (kT − 1), space by `padding`) → conv → norm → act → dropout →
    pool, the parts under `components.*`; integer strides and dilations act on time too."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv_params: Mapping[str, Any],
        norm_type: str | None = None,
        act_type: str | None = None,
        dropout: float = 0.0,
        pool_params: Mapping[str, Any] | None = None,
        causal: bool = True,
        norm_params: Mapping[str, Any] | None = None,
        use_weight_norm: bool = False,
        era: str = "A",
    ) -> None:
        super().__init__()
        params = dict(conv_params)
        kind = params.pop("type", "standard")
        aa_signal = bool(params.pop("aa_signal", False))
        if era == "A" and (aa_signal or use_weight_norm):
            raise UserError(
                "aa_signal / use_weight_norm belong to the code of 2025-10-13 onward: model.net.era=B."
            )
        if params.get("aa_freq"):
            raise UserError("conv_params.aa_freq (the FFT anti-aliasing) is not ported.")
        if kind not in ("standard", "depthwise"):
            raise UserError(
                f"conv_params.type={kind!r}: the ported convolutions of this code are standard, depthwise."
            )
        kernel, padding = _triple(params["kernel_size"]), _triple(params.get("padding", 0))
        stride, dilation = _triple(params.get("stride", 1)), _triple(params.get("dilation", 1))
        time_pad = dilation[0] * (kernel[0] - 1) if causal else padding[0]
        self.pad = (padding[2], padding[2], padding[1], padding[1], time_pad, 0)
        bias = bool(params.get("bias", norm_type in (None, "none")))
        self.components = nn.ModuleDict()
        if kind == "standard":
            conv = nn.Conv3d(in_channels, out_channels, kernel, stride, 0, dilation, bias=bias)
            self.components["conv"] = (
                WindowedConv(conv, aa_signal, use_weight_norm, int(params.get("weight_norm_dim", 0)))
                if era == "B"
                else PlainConv(conv)
            )
        else:
            if use_weight_norm:
                raise UserError("use_weight_norm on depthwise convolutions is not ported.")
            self.components["conv"] = DepthwiseConv(
                in_channels, out_channels, kernel, stride, dilation, bias, aa_signal
            )
        if norm_type == "rms":
            affine = era == "B" and (norm_params or {}).get("affine", True)  # era A's RMSNorm has no γ/β
            self.components["norm"] = RMSNorm(
                out_channels, eps=(norm_params or {}).get("eps", 1e-5), affine=affine
            )
        elif norm_type not in (None, "none"):
            raise UserError(f"norm_type={norm_type!r}: the ported norms of this code are rms and none.")
        if act_type not in (None, "none"):
            if act_type not in ACTIVATIONS or act_type == "splitrelu":
                raise UserError(f"act_type={act_type!r} is not ported for this code.")
            self.components["act"] = ACTIVATIONS[act_type]()
        if dropout:
            self.components["dropout"] = nn.Dropout(dropout)
        pool_stride = 1
        if pool_params:
            params_pool = dict(pool_params)
            pool_kind = params_pool.pop("type", None)
            if pool_kind == "aablur":
                self.components["pool"] = BlurSoftPoolSE(out_channels, era=era, **params_pool)
            elif pool_kind in ("avg", "max") and era == "B":  # 3-D: time is pooled too
                pool = nn.AvgPool3d if pool_kind == "avg" else nn.MaxPool3d
                self.components["pool"] = pool(params_pool["kernel_size"], params_pool.get("stride"))
            else:
                raise UserError(
                    f"pool_params.type={pool_kind!r} is not ported for this code (aablur; avg/max in era B)."
                )
            pool_stride = int(pool_params.get("stride", 2))
        self.out_channels = out_channels
        self.stride = tuple(s * pool_stride for s in stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, mode="replicate")
        x = self.components["conv"](x)
        for part in ("norm", "act", "dropout", "pool"):
            if part in self.components:
                x = self.components[part](x)
        return x


class ResBlockA(nn.Module):
    """`main_block(x) + shortcut(x)`, both cut to the shorter time (last frames) and the smaller centre;
    the projection shortcut is `Sequential(Conv3d(1×1×1, stride), Identity)`."""

    def __init__(self, in_channels: int, out_channels: int, block: Mapping[str, Any], era: str = "A") -> None:
        super().__init__()
        self.main_block = ConvBlockA(in_channels, out_channels, era=era, **block)
        stride = self.main_block.stride
        if in_channels != out_channels or any(s > 1 for s in stride):
            projection = nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False)
            # era A: Sequential(conv, norm) -> `shortcut.0.weight`; era B (from 5e693f2): the bare conv
            self.shortcut = projection if era == "B" else nn.Sequential(projection, nn.Identity())
        else:
            self.shortcut = nn.Identity()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main, short = self.main_block(x), self.shortcut(x)
        frames = min(main.shape[2], short.shape[2])
        height, width = min(main.shape[3], short.shape[3]), min(main.shape[4], short.shape[4])
        return _crop(main, (frames, height, width)) + _crop(short, (frames, height, width))


def _crop(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    frames, height, width = shape
    top, left = (x.shape[3] - height) // 2, (x.shape[4] - width) // 2
    return x[:, :, x.shape[2] - frames :, top : top + height, left : left + width]


class ResNetA(nn.Module):
    """One `ResBlockA` per `channels[j]` under `layers.{j}`, then `final_activation`."""

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        block_configs: Sequence[Mapping[str, Any]],
        final_activation: str | None = None,
        dim: int = 3,
        checkpointing: bool = False,
        stem_config: Any = None,
        era: str = "A",
    ) -> None:
        super().__init__()
        if stem_config:
            raise UserError(
                "convnet.params.stem_config is not ported for this code (learned_res_small has none)."
            )
        self.layers = nn.ModuleList()
        width = in_channels
        for out_channels, block in zip(channels, block_configs, strict=True):
            self.layers.append(ResBlockA(width, int(out_channels), block, era))
            width = int(out_channels)
        self.final = (
            ACTIVATIONS[final_activation]() if final_activation not in (None, "none") else nn.Identity()
        )
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.final(x)


class TemporalConvB(nn.Module):
    """Era B's front end: `temporal_conv.conv`, a valid Conv1d along the lag axis at every pixel, its weight
    multiplied once by a Hann window scaled to peak 1 when `aa_signal`."""

    def __init__(
        self,
        in_channels: int = 1,
        kernel_size: int = 16,
        num_channels: int = 4,
        bias: bool = False,
        aa_signal: bool = False,
        aa_freq: bool = False,
        **unused: Any,
    ) -> None:
        super().__init__()
        if aa_freq:
            raise UserError("frontend.params.aa_freq (the FFT anti-aliasing) is not ported.")
        self.temporal_conv = PlainConv(nn.Conv1d(1, num_channels, kernel_size, bias=bias))
        self.aa_signal = aa_signal
        self.kernel_size = int(kernel_size)
        self.out_channels = in_channels * int(num_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.temporal_conv.conv
        weight = (
            conv.weight * hann_window(conv.weight.shape[2:], conv.weight.dtype)
            if self.aa_signal
            else conv.weight
        )
        return _lag_conv(x, weight, conv.bias, self.kernel_size)


def _lag_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, taps: int) -> torch.Tensor:
    """A Conv1d of `weight` along the lag axis at every pixel; output channel c · K' + k."""
    batch, channels, frames, height, width = x.shape
    if frames < taps:
        raise UserError(f"The stimulus has {frames} lags but the temporal filters span {taps}.")
    series = x.permute(0, 1, 3, 4, 2).reshape(-1, 1, frames)
    out = F.conv1d(series, weight, bias)
    out = out.reshape(batch, channels, height, width, -1, out.shape[-1])
    return out.permute(0, 1, 4, 5, 2, 3).reshape(batch, -1, out.shape[-1], height, width)
