"""The Yates-Lab VisionCore's network code before 2025-10-20 (models/v1/nets/visioncore/early.py): era A
(learned_res_small, _gru, _none_gru; core_res with and without FiLM) and era B (learned_res_small_gru),
each forward against a plain computation written from the seed's description (float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.v1.nets.visioncore import VisionCoreNet
from tests.models.v1.test_visioncore_net import SESSIONS, _adapter


# ------------------------------------------------------------------- era A (2025-10-08 … 10-13): learned_res_small*
def seed_config_a(modulator: bool = False, recurrent: bool = False) -> dict:
    """learned_res_small.yaml (and its _gru / _none_gru siblings), with small widths."""

    def block(kernel, padding, dropout, pool, **conv):
        return {
            "conv_params": {"type": "standard", "kernel_size": kernel, "padding": padding, **conv},
            "norm_type": "rms",
            "act_type": "silu",
            "dropout": dropout,
            "pool_params": pool,
        }

    return {
        "model_type": "v1multi",
        "sampling_rate": 240,
        "initial_input_channels": 1,
        "adapter": {"type": "adapter", "params": {"grid_size": 31, "init_sigma": 1, "transform": "scale"}},
        "frontend": {
            "type": "learnable_temporal",
            "params": {
                "kernel_size": 6,
                "num_channels": 4,
                "init_type": "gaussian_derivatives",
                "causal": True,
                "bias": False,
            },
        },
        "convnet": {
            "type": "resnet",
            "params": {
                "final_activation": "softplus",
                "channels": [4, 16, 8],
                "dim": 3,
                "checkpointing": False,
                "block_configs": [
                    block([3, 5, 5], [1, 3, 3], 0.0, None, stride=2),
                    block(
                        [3, 5, 5],
                        [1, 3, 3],
                        0.1,
                        {"type": "aablur", "stride": 2, "r": 8, "use_soft": True},
                        stride=1,
                    ),
                    block(
                        [3, 3, 3],
                        [2, 2, 2],
                        0.2,
                        {"type": "aablur", "stride": 1, "r": 4, "use_soft": True},
                        dilation=2,
                    ),
                ],
            },
        },
        "modulator": {
            "type": "convgru",
            "params": {
                "behavior_dim": 42,
                "feature_dim": 8,
                "hidden_dim": 6,
                "beh_emb_dim": 5,
                "kernel_size": 3,
            },
        }
        if modulator
        else {"type": "none"},
        "recurrent": {"type": "convgru", "params": {"hidden_dim": 6, "kernel_size": 3}}
        if recurrent
        else {"type": "none"},
        "readout": {
            "type": "gaussian",
            "params": {"n_units": 8, "bias": True, "initial_std": 5.0, "initial_mean_scale": 0.1},
        },
        "output_activation": "none",
    }


def _aa_kernel(w: torch.Tensor) -> torch.Tensor:
    """Hann (zeros at both ends), a 32-point FFT low-pass (1 to 0.45 cycles/sample, raised cosine to 0.5), Hann."""
    taps = w.shape[-1]
    hann = torch.tensor(
        [0.5 - 0.5 * math.cos(2 * math.pi * i / (taps - 1)) for i in range(taps)], dtype=w.dtype
    )
    size = 1
    while size < 2 * taps:
        size *= 2
    gains = []
    for k in range(size // 2 + 1):
        f = k / size
        gains.append(
            1.0 if f <= 0.45 else 0.0 if f >= 0.5 else 0.5 * (1 + math.cos(math.pi * (f - 0.45) / 0.05))
        )
    spectrum = torch.fft.rfft(w * hann, n=size) * torch.tensor(gains, dtype=w.dtype)
    return torch.fft.irfft(spectrum, n=size)[..., :taps] * hann


def _rms_plain(x):
    return x / torch.sqrt(x.pow(2).mean(1, keepdim=True) + 1e-5)


def _soft_pool_se(x, p, prefix, stride, temperature=1.0):
    """Blur each frame by [1,2,1]x[1,2,1]/16, soft-pool 2x2 with weights exp(x / temperature), SE gate."""
    b, c, t, h, w = x.shape
    blur = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=x.dtype).view(1, 1, 3, 3) / 16
    frames = F.conv2d(x.transpose(1, 2).reshape(-1, 1, h, w), blur, padding=1)
    e = (frames / temperature).exp()
    pooled = F.avg_pool2d(frames * e, 2, stride) / (F.avg_pool2d(e, 2, stride) + 1e-6)
    pooled = pooled.reshape(b, t, c, *pooled.shape[-2:]).transpose(1, 2)
    hidden = F.silu(
        F.conv3d(pooled.mean((3, 4), keepdim=True), p[prefix + "se.1.weight"], p[prefix + "se.1.bias"])
    )
    return pooled * torch.sigmoid(F.conv3d(hidden, p[prefix + "se.3.weight"], p[prefix + "se.3.bias"]))


def _block_a(x, p, prefix, kernel_t, hw_pad, dilation, stride, pool):
    x = F.pad(x, (hw_pad, hw_pad, hw_pad, hw_pad, dilation * (kernel_t - 1), 0), mode="replicate")
    x = F.conv3d(x, p[prefix + "components.conv.conv.weight"], stride=stride, dilation=dilation)
    x = F.silu(_rms_plain(x))
    return x if pool is None else _soft_pool_se(x, p, prefix + "components.pool.", pool)


def _gru_a(x, p, prefix):
    hidden = p[prefix + "conv_h.weight"].shape[1]
    h = torch.zeros(x.shape[0], hidden, *x.shape[3:], dtype=x.dtype)
    for t in range(x.shape[2]):
        g = F.conv2d(x[:, :, t], p[prefix + "conv_x.weight"], p[prefix + "conv_x.bias"], padding=1)
        g = g + F.conv2d(h, p[prefix + "conv_h.weight"], padding=1)
        z, _, n = g.chunk(3, 1)
        h = (1 - torch.sigmoid(z)) * h + torch.sigmoid(z) * torch.tanh(n)
    return h


def _reference_a(net, stim, behavior, session):
    p = {k: v.detach() for k, v in net.state_dict().items()}
    x = stim.flip(1).unsqueeze(1)
    x = _adapter(x, p[f"adapters.{session}.log_sigma"], p[f"adapters.{session}.log_scale"], 31)
    w = _aa_kernel(p["core.frontend.temporal_conv.weight"])  # (4, 1, K)
    x = torch.stack([F.conv3d(x, w[k].view(1, 1, -1, 1, 1)) for k in range(4)], 1).squeeze(2)
    layers = (
        ([3, 3, 1, 2], None),
        ([3, 3, 1, 1], 2),
        ([3, 2, 2, 1], 1),
    )  # (kT, hw pad, dilation, stride), pool
    for j, ((kt, pad, dil, stride), pool) in enumerate(layers):
        pre = f"core.convnet.layers.{j}."
        main = _block_a(x, p, pre + "main_block.", kt, pad, dil, stride, pool)
        total = stride * (pool or 1)
        short = F.conv3d(x, p[pre + "shortcut.0.weight"], stride=total)
        t, h, w_ = (min(a, b) for a, b in zip(main.shape[2:], short.shape[2:], strict=True))

        def crop(y, t=t, h=h, w_=w_):
            top, left = (y.shape[3] - h) // 2, (y.shape[4] - w_) // 2
            return y[:, :, y.shape[2] - t :, top : top + h, left : left + w_]

        x = crop(main) + crop(short)
    x = F.softplus(x)
    if "core.modulator.beh_emb.weight" in p:
        code = behavior @ p["core.modulator.beh_emb.weight"].T + p["core.modulator.beh_emb.bias"]
        x = torch.cat([x, code[:, :, None, None, None].expand(-1, -1, *x.shape[2:])], 1)
        h = _gru_a(x, p, "core.modulator.gru.cell.")
        features = F.conv2d(h, p["core.modulator.output_proj.weight"], p["core.modulator.output_proj.bias"])
    elif "core.recurrent.cell.conv_x.weight" in p:
        features = _gru_a(x, p, "core.recurrent.cell.")
    else:
        features = x[:, :, -1]
    ro = f"readouts.{session}."
    feats = torch.einsum("bchw,nc->bnhw", features, p[ro + "features.weight"][:, :, 0, 0])
    height, width = feats.shape[-2:]
    ys = torch.arange(height, dtype=feats.dtype) - (height - 1) / 2
    xs = torch.arange(width, dtype=feats.dtype) - (width - 1) / 2
    dy = ys[None, :, None] - p[ro + "mean"][:, 0, None, None]
    dx = xs[None, None, :] - p[ro + "mean"][:, 1, None, None]
    cos, sin = torch.cos(p[ro + "theta"])[:, None, None], torch.sin(p[ro + "theta"])[:, None, None]
    std = p[ro + "std"].clamp_min(1e-3)
    mask = torch.exp(
        -0.5
        * (
            ((dy * cos + dx * sin) / std[:, 0, None, None]) ** 2
            + ((-dy * sin + dx * cos) / std[:, 1, None, None]) ** 2
        )
    )
    mask = mask / (mask.sum((-1, -2), keepdim=True) + 1e-8)
    return torch.exp((feats * mask).sum((-2, -1)) + p[ro + "bias"])  # output_activation none: a log-rate


@pytest.mark.parametrize(
    ("modulator", "recurrent"),
    [(False, False), (True, False), (False, True)],
    ids=["plain", "gru", "none_gru"],
)
def test_the_era_a_forward_equals_a_plain_computation_of_learned_res_small(modulator, recurrent) -> None:
    torch.manual_seed(1)
    net = VisionCoreNet(SESSIONS, seed_config_a(modulator, recurrent), era="A").double().eval()
    with torch.no_grad():
        for value in net.parameters():
            value.add_(0.2 * torch.randn_like(value))
        net.readouts["a"].std.abs_().add_(0.5)
    stim = torch.randn(2, 12, 30, 28, dtype=torch.float64)
    behavior = torch.randn(2, 42, dtype=torch.float64)
    with torch.no_grad():
        got = net({"a": {"stim": stim, "behavior": behavior}})["a"]
    torch.testing.assert_close(got, _reference_a(net, stim, behavior, "a"), rtol=0, atol=1e-10)


def core_res_config(modulator: bool) -> dict:
    """core_res.yaml / core_res_modulator.yaml (era A), small: no front end, depthwise ResNet, FiLM, E/I readout."""

    def block(kernel, padding, act, pool, **conv):
        return {
            "conv_params": {"type": "depthwise", "kernel_size": kernel, "padding": padding, **conv},
            "norm_type": "rms",
            "act_type": act,
            "dropout": 0.0,
            "pool_params": pool,
        }

    return {
        "model_type": "v1multi",
        "initial_input_channels": 1,
        "adapter": {"type": "adapter", "params": {"grid_size": 31, "init_sigma": 2.5, "transform": "scale"}},
        "frontend": {"type": "none", "params": {}},
        "convnet": {
            "type": "resnet",
            "params": {
                "channels": [4, 8],
                "dim": 3,
                "block_configs": [
                    block([3, 5, 5], [1, 2, 2], "silu", None),
                    block(
                        [3, 3, 3],
                        [1, 1, 1],
                        "softplus",
                        {"type": "aablur", "stride": 2, "r": 4, "use_soft": True},
                        dilation=2,
                    ),
                ],
            },
        },
        "modulator": {
            "type": "film",
            "params": {
                "behavior_dim": 40,
                "feature_dim": 128,
                "encoder_params": {
                    "type": "mlp",
                    "dims": [6, 6],
                    "activation": "gelu",
                    "bias": True,
                    "residual": True,
                    "dropout": 0.1,
                    "last_layer_activation": True,
                },
            },
        }
        if modulator
        else {"type": "none", "params": {}},
        "recurrent": {"type": "none", "params": {}},
        "readout": {
            "type": "gaussianei",
            "params": {
                "n_units": 8,
                "bias": True,
                "initial_std_ex": 2.0,
                "initial_std_inh": 3.0,
                "weight_constraint_fn": "relu",
            },
        },
        "output_activation": "none",
    }


@pytest.mark.parametrize("modulator", [False, True], ids=["core_res", "core_res_modulator"])
def test_the_core_res_family_equals_a_plain_computation(modulator) -> None:
    torch.manual_seed(6)
    net = VisionCoreNet(SESSIONS, core_res_config(modulator), era="A").double().eval()
    with torch.no_grad():
        for value in net.parameters():
            value.add_(0.2 * torch.randn_like(value))
    stim = torch.randn(2, 9, 30, 28, dtype=torch.float64)
    behavior = torch.randn(2, 40, dtype=torch.float64)
    p = {k: v.detach() for k, v in net.state_dict().items()}
    x = _adapter(stim.flip(1).unsqueeze(1), p["adapters.a.log_sigma"], p["adapters.a.log_scale"], 31)
    layers = ((2, 1, None, F.silu), (1, 2, 2, F.softplus))  # (hw pad, dilation, pool stride, act); kT = 3
    for j, (pad, dil, pool, act) in enumerate(layers):
        pre = f"core.convnet.layers.{j}."
        y = F.pad(x, (pad, pad, pad, pad, dil * 2, 0), mode="replicate")
        y = F.conv3d(
            y, p[pre + "main_block.components.conv.depthwise.weight"], dilation=dil, groups=x.shape[1]
        )
        y = act(_rms_plain(F.conv3d(y, p[pre + "main_block.components.conv.pointwise.weight"])))
        if pool:
            y = _soft_pool_se(y, p, pre + "main_block.components.pool.", pool)
        short = F.conv3d(x, p[pre + "shortcut.0.weight"], stride=pool or 1)
        t, h, w = (min(a, b) for a, b in zip(y.shape[2:], short.shape[2:], strict=True))

        def crop(z, t=t, h=h, w=w):
            top, left = (z.shape[3] - h) // 2, (z.shape[4] - w) // 2
            return z[:, :, z.shape[2] - t :, top : top + h, left : left + w]

        x = crop(y) + crop(short)
    if modulator:
        m = "core.modulator."
        code = F.gelu(behavior @ p[m + "encoder.mlp.0.linear.weight"].T + p[m + "encoder.mlp.0.linear.bias"])
        code = F.gelu(code @ p[m + "encoder.mlp.1.linear.weight"].T + p[m + "encoder.mlp.1.linear.bias"])
        scale = code @ p[m + "scale_layer.weight"].T + p[m + "scale_layer.bias"]
        shift = code @ p[m + "shift_layer.weight"].T + p[m + "shift_layer.bias"]
        x = scale[:, :, None, None, None] * x + shift[:, :, None, None, None]
    last, ro = x[:, :, -1], "readouts.a."
    out = p[ro + "bias"].clone()
    for part, sign in (("ex", 1.0), ("inh", -1.0)):
        feats = torch.einsum(
            "bchw,nc->bnhw", last, p[ro + f"_features_{part}_weight"][:, :, 0, 0].clamp_min(0)
        )
        masks = torch.stack(
            [
                torch.stack(
                    [
                        torch.stack(
                            [
                                torch.exp(
                                    -0.5
                                    * (
                                        (
                                            (
                                                (i - (last.shape[2] - 1) / 2 - p[ro + f"mean_{part}"][u, 0])
                                                * torch.cos(p[ro + f"theta_{part}"][u])
                                                + (j - (last.shape[3] - 1) / 2 - p[ro + f"mean_{part}"][u, 1])
                                                * torch.sin(p[ro + f"theta_{part}"][u])
                                            )
                                            / p[ro + f"std_{part}"][u, 0].clamp_min(1e-3)
                                        )
                                        ** 2
                                        + (
                                            (
                                                -(i - (last.shape[2] - 1) / 2 - p[ro + f"mean_{part}"][u, 0])
                                                * torch.sin(p[ro + f"theta_{part}"][u])
                                                + (j - (last.shape[3] - 1) / 2 - p[ro + f"mean_{part}"][u, 1])
                                                * torch.cos(p[ro + f"theta_{part}"][u])
                                            )
                                            / p[ro + f"std_{part}"][u, 1].clamp_min(1e-3)
                                        )
                                        ** 2
                                    )
                                )
                                for j in range(last.shape[3])
                            ]
                        )
                        for i in range(last.shape[2])
                    ]
                )
                for u in range(feats.shape[1])
            ]
        )
        masks = masks / (masks.sum((-1, -2), keepdim=True) + 1e-8)
        out = out + sign * (feats * masks).sum((-2, -1))
    with torch.no_grad():
        got = net({"a": {"stim": stim, "behavior": behavior}})["a"]
    torch.testing.assert_close(got, torch.exp(out), rtol=0, atol=1e-10)


# -------------------------------------------------------------- era B (2025-10-14 … 10-20): learned_res_small_gru
def _hann_peak1(shape) -> torch.Tensor:
    """Every axis windowed by a symmetric Hann scaled to peak 1 (a 3-tap axis keeps its centre tap only)."""
    mask = torch.ones((), dtype=torch.float64)
    for axis, taps in enumerate(shape):
        n = torch.arange(taps, dtype=torch.float64)
        hann = (
            0.5 - 0.5 * torch.cos(2 * math.pi * n / (taps - 1))
            if taps > 1
            else torch.ones(1, dtype=torch.float64)
        )
        view = [1] * len(shape)
        view[axis] = taps
        mask = mask * (hann / hann.max()).view(view)
    return mask


def _group_norm(x, groups, weight, bias):
    b, c, h, w = x.shape
    grouped = x.reshape(b, groups, -1)
    normed = (grouped - grouped.mean(-1, keepdim=True)) / torch.sqrt(
        grouped.var(-1, unbiased=False, keepdim=True) + 1e-5
    )
    return normed.reshape(b, c, h, w) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


def test_the_era_b_forward_equals_a_plain_computation_of_learned_res_small_gru() -> None:
    config = seed_config_a(modulator=True)
    config["frontend"]["params"]["aa_signal"] = True
    config["convnet"]["params"]["final_activation"] = "none"
    config["convnet"]["params"]["block_configs"][2]["conv_params"]["aa_signal"] = True
    torch.manual_seed(7)
    net = VisionCoreNet(SESSIONS, config, era="B").double().eval()
    with torch.no_grad():
        for value in net.parameters():
            value.add_(0.2 * torch.randn_like(value))
        net.readouts["a"].std.abs_().add_(0.5)
    stim = torch.randn(2, 12, 30, 28, dtype=torch.float64)
    behavior = torch.randn(2, 42, dtype=torch.float64)
    p = {k: v.detach() for k, v in net.state_dict().items()}
    x = _adapter(stim.flip(1).unsqueeze(1), p["adapters.a.log_sigma"], p["adapters.a.log_scale"], 31)
    w = p["core.frontend.temporal_conv.conv.weight"] * _hann_peak1([6])  # windowed once, no FFT
    x = torch.stack([F.conv3d(x, w[k].view(1, 1, -1, 1, 1)) for k in range(4)], 1).squeeze(2)
    layers = (([3, 3, 1, 2], None, False), ([3, 3, 1, 1], 2, False), ([3, 2, 2, 1], 1, True))
    for j, ((kt, pad, dil, stride), pool, window) in enumerate(layers):
        pre = f"core.convnet.layers.{j}."
        weight = p[pre + "main_block.components.conv.conv.weight"]
        weight = weight * _hann_peak1(weight.shape[2:]) if window else weight
        main = F.conv3d(
            F.pad(x, (pad, pad, pad, pad, dil * (kt - 1), 0), mode="replicate"),
            weight,
            stride=stride,
            dilation=dil,
        )
        gamma, beta = p[pre + "main_block.components.norm.gamma"], p[pre + "main_block.components.norm.beta"]
        main = F.silu(_rms_plain(main) * gamma.view(1, -1, 1, 1, 1) + beta.view(1, -1, 1, 1, 1))
        if pool:  # era B's soft-pool temperature: 10
            main = _soft_pool_se(main, p, pre + "main_block.components.pool.", pool, temperature=10.0)
        short = F.conv3d(x, p[pre + "shortcut.weight"], stride=stride * (pool or 1))
        t, h, w_ = (min(a, b) for a, b in zip(main.shape[2:], short.shape[2:], strict=True))

        def crop(y, t=t, h=h, w_=w_):
            top, left = (y.shape[3] - h) // 2, (y.shape[4] - w_) // 2
            return y[:, :, y.shape[2] - t :, top : top + h, left : left + w_]

        x = crop(main) + crop(short)
    code = behavior @ p["core.modulator.beh_emb.weight"].T + p["core.modulator.beh_emb.bias"]
    x = torch.cat([x, code[:, :, None, None, None].expand(-1, -1, *x.shape[2:])], 1)
    cell = "core.modulator.gru.cell."
    hidden = p["core.modulator.gru.h0"].shape[1]
    state = p["core.modulator.gru.h0"].expand(2, hidden, *x.shape[3:])
    for t in range(x.shape[2]):
        g = F.conv2d(x[:, :, t], p[cell + "conv_x.weight"], p[cell + "conv_x.bias"], padding=1)
        g = g + _group_norm(
            F.conv2d(state, p[cell + "conv_h.weight"], padding=1),
            min(32, hidden),
            p[cell + "layer_norm.weight"],
            p[cell + "layer_norm.bias"],
        )
        z, r, n = g.chunk(3, 1)
        z, r = torch.sigmoid(z), torch.sigmoid(r)
        state = (1 - z) * state + z * torch.tanh(n + r * state)
    features = F.conv2d(state, p["core.modulator.output_proj.weight"], p["core.modulator.output_proj.bias"])
    with torch.no_grad():
        got = net({"a": {"stim": stim, "behavior": behavior}})["a"]
        expected = torch.exp(net.readouts["a"](features))  # the readout is checked on its own above
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
