"""The Yates-Lab VisionCore network family: the seed's parameter names and shapes for its paper model, and the
forward pass against a plain computation written here from the seed's description (float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.v1.nets.network import SessionSpec
from models.v1.nets.visioncore import VisionCoreNet
from training.toolkit.errors import UserError


def _block(kernel, norm, pool=None, power=1.0):
    return {
        "conv_params": {
            "type": "standard",
            "kernel_size": kernel,
            "padding": [0, 0, 0],
            "aa_signal": True,
            "aa_window": "hann",
            "aa_window_kwargs": {"power": power},
            "use_weight_norm": True,
            "keep_unit_norm": True,
        },
        "norm_type": norm,
        "act_type": "splitrelu",
        "dropout": 0.0,
        "pool_params": pool,
    }


def seed_config(channels=(64, 128), stem=8, kernel=16, hidden=128, modulator=True, grid=51):
    """learned_resnet_concat_convgru_gaussian.yaml (the seed's paper model), sizes adjustable."""
    stem_block = _block([1, 7, 7], "rms")
    stem_block["conv_params"]["stride"] = 1
    stem_block["order"] = ["pad", "conv", "norm", "act"]
    return {
        "model_type": "v1multi",
        "initial_input_channels": 1,
        "adapter": {
            "type": "adapter",
            "params": {"init_sigma": 1.0, "grid_size": grid, "transform": "scale"},
        },
        "frontend": {
            "type": "learnable_temporal",
            "params": {
                "kernel_size": kernel,
                "num_channels": 4,
                "init_type": "gaussian_derivatives",
                "split_MP": False,
                "aa_signal": True,
                "aa_window": "hann",
                "aa_window_kwargs": {"power": 0.25},
                "use_weight_norm": False,
                "keep_unit_norm": False,
                "causal": True,
                "bias": False,
            },
        },
        "convnet": {
            "type": "resnet",
            "params": {
                "channels": list(channels),
                "checkpointing": False,
                "stem_config": {"out_channels": stem, **stem_block},
                "block_configs": [
                    _block([3, 9, 9], "grn", {"type": "max", "kernel_size": 2, "stride": 2}),
                    _block([3, 5, 5], "grn"),
                ],
            },
        },
        "modulator": {"type": "concat", "params": {"behavior_dim": 42, "feature_dim": 32}}
        if modulator
        else {"type": "none"},
        "recurrent": {"type": "convgru", "params": {"n_layers": 1, "hidden_dim": hidden, "kernel_size": 3}},
        "readout": {
            "type": "gaussian",
            "params": {"n_units": 8, "bias": True, "initial_std": 0.5, "initial_mean_scale": 0.1},
        },
        "output_activation": "softplus",
    }


SESSIONS = [
    SessionSpec("a", 5, list(range(5)), behavior_dim=42),
    SessionSpec("b", 3, [0, 1, 2], behavior_dim=42),
]


def test_the_paper_model_has_the_seeds_parameter_names_and_shapes() -> None:
    """The key list of a seed checkpoint of this config (HEAD code), `model.` dropped and the shared part
    under `core.`; readouts and adapters by session name."""
    net = VisionCoreNet(SESSIONS, seed_config())
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    wn = "components.conv.conv.parametrizations.weight"
    expected = {
        "core.frontend.temporal_conv.conv.parametrizations.weight.original": (4, 1, 16, 1, 1),
        f"core.convnet.stem.{wn}.original": (8, 4, 1, 7, 7),
        f"core.convnet.stem.{wn}.0.v": (8, 4, 1, 7, 7),
        f"core.convnet.stem.{wn}.0.g": (8,),
        "core.convnet.stem.components.norm.gamma": (8,),
        "core.convnet.stem.components.norm.beta": (8,),
        "core.convnet.stem.components.act.ongain": (1,),
        f"core.convnet.layers.0.main_block.{wn}.original": (64, 16, 3, 9, 9),
        f"core.convnet.layers.0.main_block.{wn}.0.v": (64, 16, 3, 9, 9),
        f"core.convnet.layers.0.main_block.{wn}.0.g": (64,),
        "core.convnet.layers.0.main_block.components.norm.gamma": (1, 64, 1, 1, 1),
        "core.convnet.layers.0.main_block.components.norm.beta": (1, 64, 1, 1, 1),
        "core.convnet.layers.0.main_block.components.act.ongain": (1,),
        "core.convnet.layers.0.shortcut.weight": (128, 16, 1, 1, 1),
        f"core.convnet.layers.1.main_block.{wn}.original": (128, 128, 3, 5, 5),
        f"core.convnet.layers.1.main_block.{wn}.0.v": (128, 128, 3, 5, 5),
        f"core.convnet.layers.1.main_block.{wn}.0.g": (128,),
        "core.convnet.layers.1.main_block.components.norm.gamma": (1, 128, 1, 1, 1),
        "core.convnet.layers.1.main_block.components.norm.beta": (1, 128, 1, 1, 1),
        "core.convnet.layers.1.main_block.components.act.ongain": (1,),
        "core.convnet.layers.1.shortcut.weight": (256, 128, 1, 1, 1),
        "core.modulator.encoder.mlp.0.linear.weight": (64, 42),
        "core.modulator.encoder.mlp.0.linear.bias": (64,),
        "core.modulator.encoder.mlp.1.weight": (64, 64),
        "core.modulator.encoder.mlp.1.bias": (64,),
        **{
            f"core.recurrent.cells.0.{gate}.{p}": shape
            for gate in ("update_gate", "reset_gate", "out_gate")
            for p, shape in (("weight", (128, 448, 3, 3)), ("bias", (128,)))
        },
        **{
            f"readouts.{name}.{p}": shape
            for name, n in (("a", 5), ("b", 3))
            for p, shape in (
                ("bias", (n,)),
                ("mean", (n, 2)),
                ("std", (n, 2)),
                ("theta", (n,)),
                ("features.weight", (n, 128, 1, 1)),
            )
        },
        **{
            f"adapters.{name}.{p}": shape
            for name in "ab"
            for p, shape in (("log_sigma", ()), ("log_scale", (2,)))
        },
    }
    assert shapes == expected

    stim = torch.randn(2, 33, 60, 60)  # the seed's 33 lags
    x = net.adapters["a"](stim.flip(1).unsqueeze(1))
    assert x.shape == (2, 1, 33, 51, 51)
    x = net.core.frontend(x)
    assert x.shape == (2, 4, 18, 51, 51)
    assert net.core.convnet(x).shape == (2, 256, 9, 14, 14)  # the seed's shapes for this config
    behavior = torch.randn(2, 42)
    rates = net(
        {"a": {"stim": stim, "behavior": behavior}, "b": {"stim": stim[:1], "behavior": behavior[:1]}}
    )
    assert rates["a"].shape == (2, 5) and rates["b"].shape == (1, 3) and (rates["a"] > 0).all()


# ----------------------------------------------------------------------------- a plain forward, from the description
def _window(taps: int, power: float) -> torch.Tensor:
    """Hann to `power` over its maximum, in float32 as the seed builds its masks."""
    if taps < 5:
        return torch.ones(taps)
    hann = torch.signal.windows.hann(taps, sym=True, dtype=torch.float32).pow(power)
    return hann / hann.max()


def _mask(kt: int, kh: int, kw: int, power: float) -> torch.Tensor:
    """The separable mask as the seed forms it: a float32 product over the axes, used in float64."""
    mask = _window(kt, power).view(-1, 1, 1) * _window(kh, power).view(1, -1, 1)
    return (mask * _window(kw, power).view(1, 1, -1)).double()


def _effective(conv: dict, prefix: str, power: float) -> torch.Tensor:
    v = conv[prefix + "0.v"]
    w = v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1, 1) * conv[prefix + "0.g"].view(-1, 1, 1, 1, 1)
    return w * _mask(*w.shape[2:], power)


def _split_relu(x):
    return torch.cat([x.clamp_min(0), (-x).clamp_min(0)], 1)


def _rms(x, gamma, beta):
    y = x / torch.sqrt(x.pow(2).mean(1, keepdim=True) + 1e-5)
    return y * gamma.view(1, -1, 1, 1, 1) + beta.view(1, -1, 1, 1, 1)


def _grn(x, gamma, beta):
    norms = x.pow(2).sum((2, 3, 4), keepdim=True).sqrt()
    return gamma * (x * norms / (norms.mean(1, keepdim=True) + 1e-5)) + beta + x


def _adapter(frames, log_sigma, log_scale, grid):
    """Blur: k = round(6 sigma) made odd; k + 1 taps at -(k//2 + 1) ... k//2; padding k//2; then resample."""
    scale = F.softplus(log_scale)
    low = float(scale.min())
    sigma = math.sqrt((0.0 if low >= 1 else 0.44 * (1 / low - 1)) ** 2 + float(F.softplus(log_sigma)) ** 2)
    k = int(round(sigma * 6)) | 1
    taps = torch.tensor([float(i) for i in range(-(k // 2) - 1, k // 2 + 1)], dtype=torch.float64)
    g = torch.exp(-0.5 * (taps / sigma) ** 2)
    g = g / g.sum()
    b, c, s, h, w = frames.shape
    x = frames.reshape(b * c * s, 1, h, w)
    x = F.conv2d(x, g.view(1, 1, -1, 1), padding=(k // 2, 0))
    x = F.conv2d(x, g.view(1, 1, 1, -1), padding=(0, k // 2))
    assert x.shape[-2:] == (h - 1, w - 1)
    line = torch.linspace(
        -1, 1, grid
    ).double()  # the seed's grid is a float32 buffer, whatever the model's dtype
    gy, gx = torch.meshgrid(line, line, indexing="ij")
    coords = torch.stack([gx * scale[0], gy * scale[1]], -1)
    x = F.grid_sample(
        x, coords.expand(x.shape[0], -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=True
    )
    return x.reshape(b, c, s, grid, grid)


def _reference(net: VisionCoreNet, stim: torch.Tensor, behavior: torch.Tensor, session: str) -> torch.Tensor:
    p = {k: v.detach() for k, v in net.state_dict().items()}
    x = stim.flip(1).unsqueeze(1)  # lag 0 first
    x = _adapter(
        x,
        p[f"adapters.{session}.log_sigma"],
        p[f"adapters.{session}.log_scale"],
        net.adapters[session].grid_size,
    )
    w = p["core.frontend.temporal_conv.conv.parametrizations.weight.original"]
    x = F.conv3d(x, w * _window(w.shape[2], 0.25).double().view(1, 1, -1, 1, 1))
    pre = "core.convnet."
    wn = "components.conv.conv.parametrizations.weight."
    x = F.conv3d(x, _effective(p, pre + "stem." + wn, 1.0))  # kT = 1: no padding
    x = _split_relu(_rms(x, p[pre + "stem.components.norm.gamma"], p[pre + "stem.components.norm.beta"]))
    for j, pool in ((0, True), (1, False)):
        block = f"{pre}layers.{j}."
        w = _effective(p, block + "main_block." + wn, 1.0)
        main = F.conv3d(F.pad(x, (0, 0, 0, 0, w.shape[2] - 1, 0), mode="replicate"), w)
        main = _split_relu(
            _grn(
                main,
                p[block + "main_block.components.norm.gamma"],
                p[block + "main_block.components.norm.beta"],
            )
        )
        if pool:
            main = F.max_pool3d(main, 2, 2)
        short = F.conv3d(x, p[block + "shortcut.weight"], stride=2 if pool else 1)
        t, hh, ww = main.shape[2:]
        top, left = (short.shape[3] - hh) // 2, (short.shape[4] - ww) // 2
        x = main + short[:, :, short.shape[2] - t :, top : top + hh, left : left + ww]
    m = "core.modulator.encoder.mlp."
    code = (
        F.gelu(behavior @ p[m + "0.linear.weight"].T + p[m + "0.linear.bias"]) @ p[m + "1.weight"].T
        + p[m + "1.bias"]
    )
    x = torch.cat([x, code[:, :, None, None, None].expand(-1, -1, *x.shape[2:])], 1)
    r = "core.recurrent.cells.0."
    h = torch.zeros(x.shape[0], p[r + "out_gate.bias"].shape[0], *x.shape[3:], dtype=x.dtype)
    for t in range(x.shape[2]):
        xh = torch.cat([x[:, :, t], h], 1)
        z = torch.sigmoid(F.conv2d(xh, p[r + "update_gate.weight"], p[r + "update_gate.bias"], padding=1))
        reset = torch.sigmoid(F.conv2d(xh, p[r + "reset_gate.weight"], p[r + "reset_gate.bias"], padding=1))
        n = torch.tanh(
            F.conv2d(
                torch.cat([x[:, :, t], reset * h], 1),
                p[r + "out_gate.weight"],
                p[r + "out_gate.bias"],
                padding=1,
            )
        )
        h = (1 - z) * h + z * n
    ro = f"readouts.{session}."
    feats = torch.einsum("bchw,nc->bnhw", h, p[ro + "features.weight"][:, :, 0, 0])
    height, width = feats.shape[-2:]
    out = torch.empty(feats.shape[:2], dtype=feats.dtype)
    for unit in range(feats.shape[1]):
        my, mx = p[ro + "mean"][unit]
        sy, sx = p[ro + "std"][unit].clamp_min(1e-3)
        theta = p[ro + "theta"][unit]
        mask = torch.empty(height, width, dtype=feats.dtype)
        for i in range(height):
            for j in range(width):
                dy, dx = i - (height - 1) / 2 - my, j - (width - 1) / 2 - mx
                a = dy * torch.cos(theta) + dx * torch.sin(theta)
                c = -dy * torch.sin(theta) + dx * torch.cos(theta)
                mask[i, j] = torch.exp(-0.5 * ((a / sy) ** 2 + (c / sx) ** 2))
        mask = mask / (mask.sum() + 1e-8)
        out[:, unit] = (feats[:, unit] * mask).sum((-2, -1)) + p[ro + "bias"][unit]
    return F.softplus(out)


def test_the_forward_pass_equals_a_plain_computation_of_the_seeds_model() -> None:
    torch.manual_seed(0)
    net = (
        VisionCoreNet(SESSIONS, seed_config(channels=(6, 8), stem=3, kernel=6, hidden=5, grid=31))
        .double()
        .eval()
    )
    with (
        torch.no_grad()
    ):  # trained-looking values: scaled adapters, rotated and shifted readouts, non-zero GRN
        for name, value in net.named_parameters():
            if value.requires_grad and not name.endswith(".0.g"):
                value.add_(0.3 * torch.randn_like(value))
        net.readouts["a"].std.abs_().add_(0.5)
    stim = torch.randn(2, 12, 24, 26, dtype=torch.float64)
    behavior = torch.randn(2, 42, dtype=torch.float64)
    with torch.no_grad():
        got = net({"a": {"stim": stim, "behavior": behavior}})["a"]
    torch.testing.assert_close(got, _reference(net, stim, behavior, "a"), rtol=0, atol=1e-10)


def test_readouts_are_matched_by_name_or_by_the_users_map_never_by_position() -> None:
    stored = [{"name": "Allen_2022-02-16", "num_units": 5}, {"name": "Logan_2020-03-06", "num_units": 3}]
    config = seed_config(channels=(4, 4), stem=2, kernel=4, hidden=3, grid=15, modulator=False)
    net = VisionCoreNet(SESSIONS, config, stored_sessions=stored, session_map={"a": "Allen_2022-02-16"})
    assert set(net.readouts) == {"Allen_2022-02-16", "Logan_2020-03-06", "b"}  # b is new, Logan kept
    assert net.readout_of == {"a": "Allen_2022-02-16", "b": "b"}
    with pytest.raises(UserError, match="has 3 units but the stored readout 'Allen_2022-02-16' reads 5"):
        VisionCoreNet(SESSIONS, config, stored_sessions=stored, session_map={"b": "Allen_2022-02-16"})
    with pytest.raises(UserError, match="not a stored readout"):
        VisionCoreNet(SESSIONS, config, stored_sessions=stored, session_map={"a": "nope"})


def test_unported_parts_are_refused_by_name() -> None:
    config = seed_config()
    config["convnet"]["type"] = "vanilla"
    with pytest.raises(UserError, match=r"model.net.config.convnet.type='vanilla' is not ported"):
        VisionCoreNet(SESSIONS, config)


# ------------------------------------------------------------ DenseNet and the behaviour-only model (HEAD configs)
def dense_config(channels=(16, 32), stem=8, kernel=16, hidden=128, grid=51) -> dict:
    """learned_dense_concat_convgru_gaussian.yaml: a GRN stem, DenseNet blocks, a biased front end."""
    config = seed_config(channels=channels, stem=stem, kernel=kernel, hidden=hidden, grid=grid)
    config["convnet"]["type"] = "densenet"
    config["convnet"]["params"]["stem_config"]["norm_type"] = "grn"
    config["frontend"]["params"]["bias"] = True
    config["readout"]["params"]["initial_std"] = 5.0
    return config


def test_the_dense_model_has_the_seeds_names_and_shapes() -> None:
    net = VisionCoreNet(SESSIONS, dense_config())
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    wn = "components.conv.conv.parametrizations.weight"
    assert shapes["core.frontend.temporal_conv.conv.bias"] == (4,)
    assert shapes[f"core.convnet.stem.{wn}.0.v"] == (8, 4, 1, 7, 7)
    assert shapes["core.convnet.stem.components.norm.gamma"] == (1, 8, 1, 1, 1)
    assert shapes[f"core.convnet.layers.0.{wn}.0.v"] == (16, 16, 3, 9, 9)
    assert shapes[f"core.convnet.layers.1.{wn}.original"] == (32, 48, 3, 5, 5)
    assert shapes["core.recurrent.cells.0.update_gate.weight"] == (128, 304, 3, 3)
    assert not any(".shortcut." in k or "main_block" in k for k in shapes)
    assert len(shapes) == 44  # the seed's 44 keys for two sessions
    x = net.core.convnet(net.core.frontend(torch.randn(1, 1, 33, 51, 51)))
    assert x.shape == (1, 112, 9, 14, 14)


def test_the_densenet_concatenates_the_cropped_features_so_far_before_each_block() -> None:
    torch.manual_seed(2)
    net = (
        VisionCoreNet(SESSIONS, dense_config(channels=(3, 4), stem=2, kernel=5, hidden=3, grid=31))
        .double()
        .eval()
    )
    dense = net.core.convnet
    p = {k: v.detach() for k, v in dense.state_dict().items()}
    wn = "components.conv.conv.parametrizations.weight."
    x = torch.randn(2, 4, 6, 31, 31, dtype=torch.float64)
    stem = F.conv3d(x, _effective(p, "stem." + wn, 1.0))
    features = _split_relu(_grn(stem, p["stem.components.norm.gamma"], p["stem.components.norm.beta"]))
    for j, pool in ((0, True), (1, False)):
        w = _effective(p, f"layers.{j}." + wn, 1.0)
        out = F.conv3d(F.pad(features, (0, 0, 0, 0, 2, 0), mode="replicate"), w)
        out = _split_relu(
            _grn(out, p[f"layers.{j}.components.norm.gamma"], p[f"layers.{j}.components.norm.beta"])
        )
        out = F.max_pool3d(out, 2, 2) if pool else out
        t, h, w_ = out.shape[2:]
        top, left = (features.shape[3] - h) // 2, (features.shape[4] - w_) // 2
        features = torch.cat(
            [features[:, :, features.shape[2] - t :, top : top + h, left : left + w_], out], 1
        )
    with torch.no_grad():
        torch.testing.assert_close(dense(x), features, rtol=0, atol=1e-12)


def test_the_behaviour_only_model_reads_behaviour_through_the_gru_and_a_linear_readout() -> None:
    """modulator_only_convgru: ones (B,1,1,1,1) + the behaviour code -> one GRU step from h = 0 -> fc; a log-rate."""
    config = {
        "model_type": "v1multi",
        "adapter": {"type": "none"},
        "frontend": {"type": "none"},
        "convnet": {"type": "none"},
        "modulator": {"type": "concat", "params": {"behavior_dim": 42, "feature_dim": 32}},
        "recurrent": {"type": "convgru", "params": {"n_layers": 1, "hidden_dim": 6, "kernel_size": 3}},
        "readout": {"type": "linear", "params": {"n_units": 8, "bias": True}},
        "output_activation": "none",
    }
    torch.manual_seed(4)
    net = VisionCoreNet(SESSIONS, config).double().eval()
    assert sorted(k for k in net.state_dict() if k.startswith("readouts.a.")) == [
        "readouts.a.bias",  # the seed's duplicate of fc.bias, one tensor
        "readouts.a.fc.bias",
        "readouts.a.fc.weight",
    ]
    assert net.core.recurrent.cells[0].update_gate.weight.shape == (6, 1 + 64 + 6, 3, 3)
    behavior = torch.randn(3, 42, dtype=torch.float64)
    with torch.no_grad():
        got = net({"a": {"stim": torch.zeros(3, 4, 5, 5), "behavior": behavior}})["a"]
        p = {k: v for k, v in net.state_dict().items()}
        m = "core.modulator.encoder.mlp."
        code = F.gelu(behavior @ p[m + "0.linear.weight"].T + p[m + "0.linear.bias"]) @ p[m + "1.weight"].T
        inputs = torch.cat([torch.ones(3, 1, dtype=torch.float64), code + p[m + "1.bias"]], 1)  # (B, 65)
        cell = "core.recurrent.cells.0."
        centre = {g: p[f"{cell}{g}.weight"][:, :65, 1, 1] for g in ("update_gate", "out_gate")}
        z = torch.sigmoid(inputs @ centre["update_gate"].T + p[cell + "update_gate.bias"])
        n = torch.tanh(inputs @ centre["out_gate"].T + p[cell + "out_gate.bias"])
        expected = torch.exp((z * n) @ p["readouts.a.fc.weight"].T + p["readouts.a.fc.bias"])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_the_spike_history_head_adds_a_spectrally_normed_mlp_of_recent_counts_before_the_output() -> None:
    """learned_dense_concat_convgru_gaussian_history: per session 5 lags x N counts -> 32 -> 10 -> N (ReLU),
    each Linear divided by u^T W v from its stored vectors (torch's hook spectral norm: no iteration in eval)."""
    config = dense_config(channels=(3, 4), stem=2, kernel=5, hidden=3, grid=31)
    config["model_type"] = "v1multi_history"
    config["history_encoder"] = {
        "type": "mlp",
        "params": {
            "num_lags": 5,
            "hidden_dims": [32, 10],
            "act_type": "relu",
            "spectral_norm": True,
            "bias": True,
        },
    }
    torch.manual_seed(5)
    net = VisionCoreNet(SESSIONS, config).double()
    head = net.spike_history["a"]
    head.train()
    for _ in range(50):  # power iteration as training leaves the stored u, v
        head(torch.zeros(1, 25, dtype=torch.float64))
    net.eval()
    assert {k for k in net.state_dict() if k.startswith("spike_history.a.mlp.0")} == {
        f"spike_history.a.mlp.0.linear.{p}" for p in ("bias", "weight_orig", "weight_u", "weight_v")
    }
    stim = torch.randn(2, 12, 24, 26, dtype=torch.float64)
    behavior, history = torch.randn(2, 42, dtype=torch.float64), torch.randn(2, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        got = net({"a": {"stim": stim, "behavior": behavior, "history": history}})["a"]
        without = net({"a": {"stim": stim, "behavior": behavior}})["a"]
        p = net.state_dict()

        def layer(x, prefix):
            w, u, v = p[prefix + "weight_orig"], p[prefix + "weight_u"], p[prefix + "weight_v"]
            return x @ (w / (u @ w @ v)).T + p[prefix + "bias"]

        h = history.reshape(2, 25)
        h = layer(
            layer(h, "spike_history.a.mlp.0.linear.").clamp_min(0), "spike_history.a.mlp.1.linear."
        ).clamp_min(0)
        added = layer(h, "spike_history.a.mlp.2.")
    # softplus(readout + head): invert the history-free output back to the readout's logits
    logits = without + torch.log(-torch.expm1(-without))
    torch.testing.assert_close(got, F.softplus(logits + added), rtol=0, atol=1e-10)


def test_the_adapter_reads_its_blur_width_from_the_device_only_after_its_parameters_change(
    monkeypatch,
) -> None:
    from models.v1.nets.visioncore.frontend import AffineAdapter

    adapter = AffineAdapter(grid_size=9, init_sigma=1.0)
    reads = []
    original = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: reads.append(1) or original(self))
    first = adapter.sigma()
    assert adapter.sigma() == first and len(reads) == 1  # evaluation: no further host read
    with torch.no_grad():
        adapter.log_scale.sub_(1.0)  # an optimizer step: zoomed in, so a wider blur
    assert adapter.sigma() > first and len(reads) == 2
