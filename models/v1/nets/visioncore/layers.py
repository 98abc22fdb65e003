"""The Yates-Lab VisionCore convolution layers (code of 2025-10-21 onward, `models/modules/conv_layers.py`,
`conv_blocks.py`, `norm_act_pool.py`, `convnet.py`), with the module and parameter names its checkpoints use.

A convolution's effective weight is `window ⊙ (g · v / ‖v‖)`: torch parametrizations registered in that
order on `conv.weight` (weight norm, then a separable anti-aliasing window), so the state dict holds
`conv.parametrizations.weight.original` (the raw weight, used only when there is no weight norm) and, with
weight norm, `conv.parametrizations.weight.0.v` / `.0.g`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from training.toolkit.errors import UserError

WINDOWS = ("hann", "hamming", "blackman", "bartlett", "cosine", "nuttall")
MIN_WINDOWED_TAPS = 5  # kernel axes shorter than this are not windowed


def _triple(value: int | Sequence[int]) -> tuple[int, int, int]:
    return (int(value),) * 3 if isinstance(value, int) else tuple(int(v) for v in value)  # type: ignore[return-value]


class WeightNorm(nn.Module):
    """`g · v / max(‖v‖, 1e-12)`, the norm over every axis but the first; `g` fixed at 1 for `keep_unit_norm`.
    Its own `v` and `g` replace the weight it parametrizes (the seed's `_WeightNorm`)."""

    def __init__(self, weight: torch.Tensor, keep_unit_norm: bool = False) -> None:
        super().__init__()
        self.v = nn.Parameter(weight.detach().clone())
        norms = weight.detach().flatten(1).norm(dim=1)
        self.g = nn.Parameter(
            torch.ones_like(norms) if keep_unit_norm else norms, requires_grad=not keep_unit_norm
        )

    def forward(self, _: torch.Tensor) -> torch.Tensor:
        norms = self.v.flatten(1).norm(dim=1).clamp_min(1e-12)
        return self.v * (self.g / norms).view(-1, *([1] * (self.v.ndim - 1)))


class SeparableWindow(nn.Module):
    """Multiplies a kernel by a window on each spatial/temporal axis of length >= 5: the `window` function
    (symmetric) to the power `power`, divided by its maximum. Not saved; built in float32 as the seed built
    it (whatever the model's dtype, so a float64 model reproduces the seed's numbers), cast per dtype and
    device."""

    def __init__(self, kernel_shape: Sequence[int], window: str = "hann", power: float = 1.0) -> None:
        super().__init__()
        if window not in WINDOWS:
            raise UserError(f"aa_window={window!r} is not one of {', '.join(WINDOWS)}.")
        mask = torch.ones((), dtype=torch.float32)
        for axis, taps in enumerate(kernel_shape):
            shape = [1] * len(kernel_shape)
            shape[axis] = taps
            if taps >= MIN_WINDOWED_TAPS:
                values = getattr(torch.signal.windows, window)(taps, sym=True, dtype=torch.float32).pow(power)
                mask = mask * (values / values.max()).view(shape)
        self.mask = mask
        self._cast: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        key = (weight.dtype, weight.device)
        if key not in self._cast:
            self._cast[key] = self.mask.to(dtype=weight.dtype, device=weight.device)
        return weight * self._cast[key]


class StandardConv(nn.Module):
    """`.conv`, a Conv3d (bias optional, no padding: ConvBlock pads) whose weight carries weight norm and/or
    the anti-aliasing window as parametrizations."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        stride: int | Sequence[int] = 1,
        dilation: int | Sequence[int] = 1,
        bias: bool = False,
        use_weight_norm: bool = False,
        keep_unit_norm: bool = False,
        aa_signal: bool = False,
        aa_window: str = "hann",
        aa_window_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        kernel = _triple(kernel_size)
        self.conv = nn.Conv3d(
            in_channels, out_channels, kernel, _triple(stride), 0, _triple(dilation), bias=bias
        )
        if use_weight_norm:
            parametrize.register_parametrization(
                self.conv, "weight", WeightNorm(self.conv.weight, keep_unit_norm)
            )
        if aa_signal:
            power = float((aa_window_kwargs or {}).get("power", 1.0))
            parametrize.register_parametrization(
                self.conv, "weight", SeparableWindow(kernel, aa_window, power)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class RMSNorm(nn.Module):
    """`x · rsqrt(mean_c x² + eps) · γ + β` over the channel axis, computed in at least float32."""

    def __init__(self, channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        if affine:
            self.gamma = nn.Parameter(torch.ones(channels))
            self.beta = nn.Parameter(torch.zeros(channels))
        else:
            self.gamma = self.beta = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # at least float32
        y = wide * torch.rsqrt(wide.pow(2).mean(1, keepdim=True) + self.eps)
        if self.gamma is not None:
            shape = (1, -1) + (1,) * (x.ndim - 2)
            y = y * self.gamma.view(shape) + self.beta.view(shape)
        return y.to(x.dtype)


class GlobalResponseNorm(nn.Module):
    """ConvNeXt-V2 GRN over (T, H, W): `γ · (x · n) + β + x`, `n = ‖x‖ / (mean_c ‖x‖ + eps)`."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.full((1, channels, 1, 1, 1), 0.1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norms = x.pow(2).sum(dim=(2, 3, 4), keepdim=True).sqrt()
        normalised = norms / (norms.mean(dim=1, keepdim=True) + self.eps)
        return self.gamma * (x * normalised) + self.beta + x


class SplitReLU(nn.Module):
    """`cat([relu(x) · |ongain|, relu(-x)])` along channels: twice the channels (ongain is fixed at 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.ongain = nn.Parameter(torch.ones(1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(x) * self.ongain.abs(), F.relu(-x)], dim=1)


ACTIVATIONS = {
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "softplus": nn.Softplus,
    "splitrelu": SplitReLU,
}
NORMS = ("rms", "grn", "none", None)
DEFAULT_ORDER = ("pad", "conv", "norm", "act", "dropout", "pool")


class ConvBlock(nn.Module):
    """pad → conv → norm → act → dropout → pool (or the config's `order`), the parts under `components.*`.

    A kernel with more than one time tap makes the block 3-D: time is padded causally (index order: left by
    dilation · (kT − 1)) and space by `padding`, replicating the border; a single-tap kernel is not padded.
    Integer strides, dilations and pools act on time too.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv_params: Mapping[str, Any],
        norm_type: str | None = None,
        act_type: str | None = None,
        dropout: float = 0.0,
        pool_params: Mapping[str, Any] | None = None,
        order: Sequence[str] = DEFAULT_ORDER,
        norm_params: Mapping[str, Any] | None = None,
        causal: bool = True,
    ) -> None:
        super().__init__()
        params = dict(conv_params)
        if params.pop("type", "standard") != "standard":
            raise UserError(
                f"conv_params.type={conv_params.get('type')!r}: only 'standard' convolutions are ported."
            )
        kernel = _triple(params.pop("kernel_size"))
        padding = _triple(params.pop("padding", 0))
        dilation = _triple(params.get("dilation", 1))
        params.pop("weight_norm_dim", None)  # the seed ignores it (always the output axis)
        self.order = tuple(order)
        self.three_d = kernel[0] > 1
        self.pad = (
            padding[2],
            padding[2],
            padding[1],
            padding[1],
            dilation[0] * (kernel[0] - 1) if causal else padding[0],
            0,
        )
        if not self.three_d:
            self.pad = (0,) * 6
        bias = bool(params.pop("bias", norm_type in (None, "none")))
        norm_params = dict(norm_params or {})
        self.components = nn.ModuleDict()
        self.components["conv"] = StandardConv(in_channels, out_channels, kernel, bias=bias, **params)
        if norm_type == "rms":
            self.components["norm"] = RMSNorm(
                out_channels, eps=norm_params.get("eps", 1e-5), affine=norm_params.get("affine", True)
            )
        elif norm_type == "grn":
            self.components["norm"] = GlobalResponseNorm(out_channels, eps=norm_params.get("eps", 1e-5))
        elif norm_type not in NORMS:
            raise UserError(f"norm_type={norm_type!r}: the ported norms are rms, grn and none.")
        if act_type not in (None, "none"):
            if act_type not in ACTIVATIONS:
                raise UserError(
                    f"act_type={act_type!r}: the ported activations are {', '.join(ACTIVATIONS)}."
                )
            self.components["act"] = ACTIVATIONS[act_type]()
        if dropout:
            self.components["dropout"] = nn.Dropout(dropout)
        if pool_params:
            kind = pool_params.get("type")
            pool = {"max": (nn.MaxPool2d, nn.MaxPool3d), "avg": (nn.AvgPool2d, nn.AvgPool3d)}.get(kind)
            if pool is None:
                raise UserError(f"pool_params.type={kind!r}: the ported pools are max and avg.")
            self.components["pool"] = pool[self.three_d](
                pool_params["kernel_size"], pool_params.get("stride")
            )
        self.out_channels = out_channels * (2 if act_type == "splitrelu" else 1)
        conv_stride = _triple(params.get("stride", 1))
        pool_stride = _triple(
            (pool_params or {}).get("stride") or (pool_params or {}).get("kernel_size") or 1
        )
        self.stride = tuple(c * p for c, p in zip(conv_stride, pool_stride, strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for part in self.order:
            if part == "pad":
                if any(self.pad):
                    x = F.pad(x, self.pad, mode="replicate")
            elif part in self.components:
                module = self.components[part]
                if part == "pool" and not self.three_d:  # 2-D pooling frame by frame
                    batch, channels, frames = x.shape[:3]
                    pooled = module(x.transpose(1, 2).flatten(0, 1))
                    x = pooled.unflatten(0, (batch, frames)).transpose(1, 2)
                else:
                    x = module(x)
        return x


def crop_like(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`source` cut to `target`'s (T, H, W): the last frames, the centre of space (start (diff)//2)."""
    frames, height, width = target.shape[2:]
    top = (source.shape[3] - height) // 2
    left = (source.shape[4] - width) // 2
    return source[:, :, source.shape[2] - frames :, top : top + height, left : left + width]


class ResBlock(nn.Module):
    """`main_block(x) + shortcut(x)`; the shortcut (a strided 1×1×1 Conv3d when channels or stride change)
    is cropped to the main path."""

    def __init__(self, in_channels: int, out_channels: int, block: Mapping[str, Any]) -> None:
        super().__init__()
        self.main_block = ConvBlock(in_channels, out_channels, **block)
        channels, stride = self.main_block.out_channels, self.main_block.stride
        needs_projection = in_channels != channels or any(s > 1 for s in stride)
        self.shortcut = (
            nn.Conv3d(in_channels, channels, 1, stride=stride, bias=False)
            if needs_projection
            else nn.Identity()
        )
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.main_block(x)
        return main + crop_like(self.shortcut(x), main)


class _StemAndBlocks(nn.Module):
    """Optional `stem` ConvBlock, then one block per `channels[j]` / `block_configs[j]` under `layers.{j}`;
    `width_after` says the channels the next block gets (ResNet: the block's; DenseNet: all so far)."""

    dense = False

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        block_configs: Sequence[Mapping[str, Any]],
        stem_config: Mapping[str, Any] | None = None,
        final_activation: str | None = None,
        checkpointing: bool = False,
        dim: int = 3,
    ) -> None:
        super().__init__()
        if len(block_configs) != len(channels):
            raise UserError(f"convnet: {len(channels)} channels but {len(block_configs)} block_configs.")
        if final_activation not in (None, "none"):
            raise UserError(
                f"convnet.final_activation={final_activation!r}: not ported (the HEAD configs use none)."
            )
        self.stem = None
        width = in_channels
        if stem_config:
            stem = dict(stem_config)
            self.stem = ConvBlock(width, int(stem.pop("out_channels")), **stem)
            width = self.stem.out_channels
        self.layers = nn.ModuleList()
        for out_channels, block in zip(channels, block_configs, strict=True):
            if self.dense:
                self.layers.append(ConvBlock(width, int(out_channels), **block))
                width += self.layers[-1].out_channels
            else:
                self.layers.append(ResBlock(width, int(out_channels), block))
                width = self.layers[-1].out_channels
        self.out_channels = width


class ResNet(_StemAndBlocks):
    """Optional `stem`, then one `ResBlock` per `channels[j]` / `block_configs[j]` under `layers.{j}`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem is not None:
            x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return x


class DenseNet(_StemAndBlocks):
    """Optional `stem`, then ConvBlocks under `layers.{j}`, each fed everything so far: after each block the
    features so far, cut to its output (last frames, centre), are concatenated before its output."""

    dense = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem is not None:
            x = self.stem(x)
        for layer in self.layers:
            out = layer(x)
            x = torch.cat([crop_like(x, out), out], dim=1)
        return x
