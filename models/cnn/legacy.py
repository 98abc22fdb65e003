"""The files of Torch-Playground (github.com/joeljosephjin/Torch-Playground, "TP"), the predecessor of the
`cnn` system, as registered migrations (listed by the cnn experiments under `plugins.cnn_migrations`).

TP wrote checkpoints in one place only, `ClassifierPipeline.save_model` (`main.py:228-231` at 4efb447;
active as `save/<Model><save_as>.pth` from a6b6635, 2022-11-08, to 4b2c4f9^, 2024-02-13):
`torch.save(model.state_dict(), path)`, a bare state dict of the plain network, with no epoch, optimizer
or schedule. Its networks are recognised by distinctive keys; those VisionCore has (DenseNet3, the
efficient DenseNet-BC, ResNet18) are converted, the others are refused by name (docs/migrating.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch

from training.toolkit.legacy import (
    NET_PREFIX,
    ConvertedCheckpoint,
    LegacyCheckpointError,
    Migration,
    bare_state_dict,
    register,
)

TP_WEIGHTS_ONLY = (
    "weights and BatchNorm statistics only: Torch-Playground saved no optimizer state, epoch or LR "
    "schedule, and the file holds the weights of its last save (every 6th epoch), not necessarily the final ones"
)
DENSENET3 = "models.cnn.nets.densenet.DenseNet3"
RESNET18 = "models.cnn.nets.resnet18.resnet18"

# TP class -> (its source in Torch-Playground, the keys that only its state dict has).
TP_NETWORKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "DenseNet3": ("models/densenet3.py:84-148", ("conv1.weight", "block1.layer.0.bn1.weight", "fc.weight")),
    "DenseNet": (
        "models/densenet.py:133-238, a copy of gpleiss/efficient_densenet_pytorch",
        ("features.denseblock1.denselayer1.norm1.weight", "features.norm_final.weight", "classifier.weight"),
    ),
    "SimpleDLA": ("models/dla_simple.py:93-131", ("base.0.weight", "layer3.root.conv.weight")),
    "ResNet18": ("models/resnet.py:86-120", ("layer1.0.conv1.weight", "linear.weight")),
    "ShuffleNet": ("models/shufflenet.py:123-202", ("stage2.0.gconv1.weight",)),
    "AVModel": ("models/models.py:19-50", ("network.23.weight",)),
    "SimpleModel": ("models/models.py:53-73", ("network.11.weight",)),
    "SimpleMNIST": ("models/models.py:76-99", ("conv1.weight", "fc2.weight")),
}


def torch_playground_network(weights: Mapping[str, torch.Tensor]) -> str | None:
    """The TP class whose state dict `weights` is, by its distinctive keys (first match in `TP_NETWORKS`)."""
    for network, (_, keys) in TP_NETWORKS.items():
        if all(key in weights for key in keys):
            if network == "SimpleMNIST" and tuple(weights["conv1.weight"].shape) != (32, 1, 3, 3):
                continue
            return network
    return None


def _shape(weights: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in weights:
        raise LegacyCheckpointError(
            f"This Torch-Playground file lacks `{key}`, which every file of its network has: it is damaged or "
            "edited; migrate an intact copy."
        )
    return tuple(weights[key].shape)


def _count(weights: Mapping[str, torch.Tensor], pattern: str) -> int:
    """How many distinct indices `(\\d+)` in `pattern` the keys hold."""
    regex = re.compile(pattern)
    return len({m.group(1) for key in weights if (m := regex.match(key))})


def _rename(weights: Mapping[str, torch.Tensor], rules: list[tuple[str, Callable[[re.Match], str]]]) -> dict:
    """Keys under `net.`, renamed by the first rule whose pattern matches their start; others kept as they are
    (strict loading then names them)."""
    compiled = [(re.compile(pattern), replace) for pattern, replace in rules]
    renamed = {}
    for key, value in weights.items():
        for regex, replace in compiled:
            if m := regex.match(key):
                key = replace(m) + key[m.end() :]
                break
        renamed[NET_PREFIX + key] = value
    return renamed


def _target_net(config: Mapping[str, Any] | None, network: str, target: str, fix: str) -> Mapping | None:
    """`model.net` of the target config (None without one), refusing one that builds another network."""
    if config is None:
        return None
    net = (config.get("model") or {}).get("net") or {}
    if net.get("_target_") != target:
        raise LegacyCheckpointError(
            f"This is a Torch-Playground {network} state dict, but the requested model builds "
            f"model.net._target_={net.get('_target_')}, not {target}. Migrate it with {fix}."
        )
    return net


def _refuse_contradictions(network: str, found: list[tuple[str, Any, Any, str]]) -> None:
    """One paragraph for every config key whose value contradicts the file: (key, config, file, evidence)."""
    if not found:
        return
    what = "; ".join(
        f"model.net.{key}={ours!r} in the config but {theirs!r} in the file ({evidence})"
        for key, ours, theirs, evidence in found
    )
    fixes = " ".join(
        f"data=<a data set with {theirs} classes>"
        if key == "num_classes"
        else f"model.net.{key}={str(theirs).lower() if isinstance(theirs, bool) else theirs}"
        for key, _, theirs, _ in found
    )
    raise LegacyCheckpointError(
        f"This Torch-Playground {network} file does not fit the requested model: {what}. Name the experiment "
        f"it was trained with, or add {fixes} to the command."
    )


def _check_densenet(net: Mapping | None, network: str, arch: dict[str, Any]) -> dict[str, Any]:
    """Compare the architecture read from the file with `model.net`; returns the overrides it fixes."""
    if net is None:
        return {"model.net.stem_channels": arch["stem_channels"]}
    n, step = arch["layers_per_block"], 6 if arch["bottleneck"] else 3
    evidence = {
        "depth": f"{n} layers per dense block, so depth = {step}*{n}+4",
        "growth_rate": f"{arch['growth_key']} has {arch['growth_rate']} output channels",
        "bottleneck": "1x1 bottleneck convolutions " + ("present" if arch["bottleneck"] else "absent"),
        "num_classes": f"{arch['classes_key']} has {arch['num_classes']} rows",
        "in_channels": f"{arch['stem_key']} reads {arch['in_channels']} channels",
        "stem_channels": f"{arch['stem_key']} has {arch['stem_channels']} output channels",
    }
    found = [
        (key, net.get(key), arch[key], evidence[key])
        for key in ("depth", "growth_rate", "bottleneck", "num_classes", "in_channels")
        if net.get(key) != arch[key]
    ]
    if net.get("stem_channels") is not None and net["stem_channels"] != arch["stem_channels"]:
        found.append(
            ("stem_channels", net["stem_channels"], arch["stem_channels"], evidence["stem_channels"])
        )
    reduction = net.get("reduction", 1.0)
    for key, (c_in, c_out) in arch["transitions"].items():
        if int(c_in * reduction) != c_out:
            found.append(
                ("reduction", reduction, round(c_out / c_in, 4), f"{key} maps {c_in} to {c_out} channels")
            )
            break
    _refuse_contradictions(network, found)
    return {"model.net.stem_channels": arch["stem_channels"]}


def _equal_blocks(network: str, counts: list[int]) -> int:
    """The layers per dense block, refusing anything but three blocks of equal length."""
    if len(counts) != 3 or len(set(counts)) != 1 or counts[0] < 1:
        raise LegacyCheckpointError(
            f"This Torch-Playground {network} file has dense blocks of {counts} layers; VisionCore's DenseNet3 "
            "has three blocks of equal length, so it has no counterpart for this network."
        )
    return counts[0]


def _converted(
    weights: dict[str, torch.Tensor], network: str, described: str, overrides: dict[str, Any]
) -> ConvertedCheckpoint:
    return ConvertedCheckpoint(
        state_dict=weights,
        epoch=0,
        global_step=0,
        optimizer_state=None,
        notes=[f"Torch-Playground {network} state dict ({described}); {TP_WEIGHTS_ONLY}"],
        config_overrides=overrides,
    )


class _TorchPlayground(Migration):
    network: ClassVar[str]  # the TP class (`--model` name) whose state dicts this migration reads
    checks_architecture = True

    def matches(self, checkpoint: Mapping[str, Any]) -> bool:
        weights = bare_state_dict(checkpoint)
        return weights is not None and torch_playground_network(weights) == self.network


@register
class TorchPlaygroundDenseNet3(_TorchPlayground):
    """Torch-Playground `DenseNet3` state dict (models/densenet3.py:84-148, andreasveit/densenet-pytorch).

    Reads `save/DenseNet3<save_as>.pth` as written by main.py:228-231 (a6b6635…4b2c4f9^). Its keys
    (`conv1`, `block{1,2,3}.layer.{i}.{bn1,conv1[,bn2,conv2]}`, `trans{1,2}.{bn1,conv1}`, `bn1`, `fc`) map onto
    VisionCore's `DenseNet3` one to one; the forward passes are the same (pre-activation layers, old maps first
    in every concatenation, BN-ReLU-8x8 average before the classifier). The architecture is read from the
    shapes: its stem is 2k = 24 wide (the paper's DenseNet-40 has 16), which sets `model.net.stem_channels`.
    `DenseNet3_k12_d100` / `DenseNet3_k40_d190` files have the same keys with other sizes.
    """

    name = "torch_playground_densenet3_v0"
    network = "DenseNet3"

    def apply(self, checkpoint: Mapping[str, Any], config: Mapping[str, Any] | None) -> ConvertedCheckpoint:
        weights = bare_state_dict(checkpoint) or {}
        net = _target_net(config, self.network, DENSENET3, "experiment=cifar10_densenet40")
        n = _equal_blocks(self.network, [_count(weights, rf"block{b}\.layer\.(\d+)\.") for b in (1, 2, 3)])
        bottleneck = "block1.layer.0.conv2.weight" in weights
        growth_key = f"block1.layer.0.conv{2 if bottleneck else 1}.weight"
        growth_rate = _shape(weights, growth_key)[0]
        if bottleneck and _shape(weights, "block1.layer.0.conv1.weight")[0] != 4 * growth_rate:
            raise LegacyCheckpointError(
                f"This Torch-Playground DenseNet3 file's bottleneck convolutions have "
                f"{_shape(weights, 'block1.layer.0.conv1.weight')[0]} channels, not 4k = {4 * growth_rate}; "
                "VisionCore's DenseNet3 has only 4k-wide bottlenecks, so it has no counterpart for this network."
            )
        arch = {
            "depth": (6 if bottleneck else 3) * n + 4,
            "layers_per_block": n,
            "growth_rate": growth_rate,
            "growth_key": growth_key,
            "bottleneck": bottleneck,
            "stem_channels": _shape(weights, "conv1.weight")[0],
            "in_channels": _shape(weights, "conv1.weight")[1],
            "stem_key": "conv1.weight",
            "num_classes": _shape(weights, "fc.weight")[0],
            "classes_key": "fc.weight",
            "transitions": {
                f"trans{t}.conv1.weight": _shape(weights, f"trans{t}.conv1.weight")[1::-1] for t in (1, 2)
            },
        }
        overrides = _check_densenet(net, self.network, arch)
        layer = {"bn1": 0, "conv1": 2, "bn2": 4, "conv2": 6}
        rules = [
            (r"conv1\.", lambda m: "features.0."),
            (
                r"block([123])\.layer\.(\d+)\.(bn1|conv1|bn2|conv2)\.",
                lambda m: f"features.{2 * int(m[1]) - 1}.{m[2]}.body.{layer[m[3]]}.",
            ),
            (r"trans([12])\.(bn1|conv1)\.", lambda m: f"features.{2 * int(m[1])}.{layer[m[2]]}."),
            (r"bn1\.", lambda m: "features.6."),
            (r"fc\.", lambda m: "classifier."),
        ]
        described = (
            f"depth {arch['depth']}, k={growth_rate}, stem {arch['stem_channels']}, "
            f"{'bottleneck' if bottleneck else 'no bottleneck'}, {arch['num_classes']} classes"
        )
        return _converted(_rename(weights, rules), self.network, described, overrides)


@register
class TorchPlaygroundDenseNetBC(_TorchPlayground):
    """Torch-Playground efficient `DenseNet` state dict = DenseNet-BC-100, k=12 (models/densenet.py:133-238).

    TP's copy of gpleiss/efficient_densenet_pytorch, saved by main.py:228-231 as `save/DenseNet<save_as>.pth`
    (gpleiss's own demo.py writes the same keys to `model.dat`). Keys `features.conv0`,
    `features.denseblock{b}.denselayer{j}.{norm1,conv1,norm2,conv2}` (j counts from 1),
    `features.transition{t}.{norm,conv}`, `features.norm_final`, `classifier` map onto VisionCore's
    `DenseNet3(bottleneck=True)` (`model=densenet_bc100`): the same layers in the same order, 4k bottlenecks,
    `int()` compression and a BN-ReLU-global-average head.
    """

    name = "torch_playground_densenet_bc_v0"
    network = "DenseNet"

    def apply(self, checkpoint: Mapping[str, Any], config: Mapping[str, Any] | None) -> ConvertedCheckpoint:
        weights = bare_state_dict(checkpoint) or {}
        fix = "experiment=cifar10_densenet40 model=densenet_bc100"
        net = _target_net(config, self.network, DENSENET3, fix)
        if "features.norm0.weight" in weights:
            raise LegacyCheckpointError(
                "This Torch-Playground DenseNet file has the ImageNet stem (small_inputs=False: 7x7 conv, "
                "norm0, max-pool); VisionCore's DenseNet3 has only the CIFAR 3x3 stem, so it has no counterpart "
                "for this network."
            )
        blocks = _count(weights, r"features\.denseblock(\d+)\.")
        n = _equal_blocks(
            self.network,
            [
                _count(weights, rf"features\.denseblock{b}\.denselayer(\d+)\.")
                for b in range(1, max(blocks, 3) + 1)
            ],
        )
        first = "features.denseblock1.denselayer1"
        growth_rate = _shape(weights, f"{first}.conv2.weight")[0]
        if _shape(weights, f"{first}.conv1.weight")[0] != 4 * growth_rate:
            raise LegacyCheckpointError(
                f"This Torch-Playground DenseNet file has bn_size={_shape(weights, f'{first}.conv1.weight')[0]}"
                f"/{growth_rate}, not 4; VisionCore's DenseNet3 has only 4k-wide bottlenecks, so it has no "
                "counterpart for this network."
            )
        arch = {
            "depth": 6 * n + 4,
            "layers_per_block": n,
            "growth_rate": growth_rate,
            "growth_key": f"{first}.conv2.weight",
            "bottleneck": True,
            "stem_channels": _shape(weights, "features.conv0.weight")[0],
            "in_channels": _shape(weights, "features.conv0.weight")[1],
            "stem_key": "features.conv0.weight",
            "num_classes": _shape(weights, "classifier.weight")[0],
            "classes_key": "classifier.weight",
            "transitions": {
                f"features.transition{t}.conv.weight": _shape(weights, f"features.transition{t}.conv.weight")[
                    1::-1
                ]
                for t in (1, 2)
            },
        }
        overrides = _check_densenet(net, self.network, arch)
        layer = {"norm1": 0, "conv1": 2, "norm2": 4, "conv2": 6, "norm": 0, "conv": 2}
        rules = [
            (r"features\.conv0\.", lambda m: "features.0."),
            (
                r"features\.denseblock([123])\.denselayer(\d+)\.(norm1|conv1|norm2|conv2)\.",
                lambda m: f"features.{2 * int(m[1]) - 1}.{int(m[2]) - 1}.body.{layer[m[3]]}.",
            ),
            (
                r"features\.transition([12])\.(norm|conv)\.",
                lambda m: f"features.{2 * int(m[1])}.{layer[m[2]]}.",
            ),
            (r"features\.norm_final\.", lambda m: "features.6."),
        ]
        described = f"DenseNet-BC depth {arch['depth']}, k={growth_rate}, {arch['num_classes']} classes"
        return _converted(_rename(weights, rules), self.network, described, overrides)


@register
class TorchPlaygroundResNet18(_TorchPlayground):
    """Torch-Playground `ResNet18` state dict (models/resnet.py:86-120, kuangliu/pytorch-cifar style).

    Reads `save/ResNet18<save_as>.pth` as written by main.py:228-231 (a0f0227…4b2c4f9^). The network is
    torchvision's ResNet-18 with a 3x3 stride-1 stem and no max-pool, VisionCore's `resnet18`; only names
    differ: `layer{2,3,4}.0.shortcut.{0,1}` -> `downsample.{0,1}`, `linear` -> `fc`.
    """

    name = "torch_playground_resnet18_v0"
    network = "ResNet18"

    def apply(self, checkpoint: Mapping[str, Any], config: Mapping[str, Any] | None) -> ConvertedCheckpoint:
        weights = bare_state_dict(checkpoint) or {}
        net = _target_net(config, self.network, RESNET18, "experiment=cifar10_resnet18")
        blocks = [_count(weights, rf"layer{stage}\.(\d+)\.") for stage in (1, 2, 3, 4)]
        if blocks != [2, 2, 2, 2] or any(".conv3." in key for key in weights):
            raise LegacyCheckpointError(
                f"This is a kuangliu-style ResNet state dict with {blocks} blocks per stage"
                f"{' and bottleneck blocks' if any('.conv3.' in key for key in weights) else ''}, not "
                "Torch-Playground's ResNet18 ([2, 2, 2, 2] basic blocks); VisionCore has only the ResNet-18 of "
                "this family, so it has no counterpart for this network."
            )
        num_classes, in_channels = _shape(weights, "linear.weight")[0], _shape(weights, "conv1.weight")[1]
        if net is not None:
            found = [
                (key, net.get(key), theirs, evidence)
                for key, theirs, evidence in (
                    ("num_classes", num_classes, f"linear.weight has {num_classes} rows"),
                    ("in_channels", in_channels, f"conv1.weight reads {in_channels} channels"),
                )
                if net.get(key) != theirs
            ]
            _refuse_contradictions(self.network, found)
        rules = [
            (r"(layer[1-4]\.\d+\.)shortcut\.", lambda m: f"{m[1]}downsample."),
            (r"linear\.", lambda m: "fc."),
        ]
        return _converted(_rename(weights, rules), self.network, f"{num_classes} classes", {})


@register
class TorchPlaygroundWithoutCounterpart(Migration):
    """Torch-Playground state dicts of networks VisionCore does not have: recognised and refused by name.

    SimpleDLA (models/dla_simple.py:93-131), ShuffleNet (models/shufflenet.py:123-202), AVModel, SimpleModel and
    SimpleMNIST (models/models.py:19-99), all saved by main.py:228-231. Nothing is converted: no VisionCore
    network computes what they compute, and guessing one would give a model that only looks migrated.
    """

    name = "torch_playground_no_counterpart_v0"
    networks = ("SimpleDLA", "ShuffleNet", "AVModel", "SimpleModel", "SimpleMNIST")

    def matches(self, checkpoint: Mapping[str, Any]) -> bool:
        weights = bare_state_dict(checkpoint)
        return weights is not None and torch_playground_network(weights) in self.networks

    def apply(self, checkpoint: Mapping[str, Any], config: Mapping[str, Any] | None) -> ConvertedCheckpoint:
        network = torch_playground_network(bare_state_dict(checkpoint) or {})
        source, keys = TP_NETWORKS[str(network)]
        raise LegacyCheckpointError(
            f"This is a Torch-Playground {network} state dict (recognised by {', '.join(keys)}; the class is "
            f"in Torch-Playground's {source}). VisionCore has no equivalent network (its cnn networks are "
            "SmallCNN, the CIFAR ResNets, ResNet-18, DenseNet3 and DenseNet-BC), so its weights cannot be "
            "migrated and none are guessed. Evaluate the file with Torch-Playground itself, or train the "
            "closest VisionCore model afresh (docs/migrating.md)."
        )
