"""The abstractor: torchvision ResNet-18 reading a design's structure into V_Meta and V_Grammar.

Input: `schema.structure_channels` (text, image, hierarchy, and the colour ID's fixed colour features:
CIELAB, contrast level, outside flag; STRUCTURE_CHANNELS channels), optionally area-resized to
`input_size` and folded by `space_to_depth` (below) -> ResNet-18 body -> global pool (plus, optionally,
layer1/2 pooled over each text role's ink, `role_pooling`, and the measured layout, `layout_statistics`,
also on a log scale with `log_statistics`)
-> FC-512 (`features`, also the design FID feature) -> two MLP heads: V_Meta (goal and format logits, tone in [0, 1]) and V_Grammar (4 scores in [0, 1]).

Stems: `imagenet` is torchvision's 7x7 stride-2 conv + max-pool (the body sees H/4); `cifar` is a
3x3 stride-1 conv without max-pool (the body sees H), which keeps thin text strokes at 64-128 px
but costs about 16x the compute of the body. `space_to_depth` f folds each f x f block of pixels into
channels (`nn.PixelUnshuffle`): the body costs what an f-times smaller input costs, yet the first conv
still sees every pixel (alignment is judged to 1 % of the width, under one pixel at 64²).

ImageNet weights (`pretrained=imagenet`) are read from a local torchvision file, never downloaded.
The first conv is adapted to the structure channels: each new input channel gets the mean of the
pretrained R, G, B filters scaled by 3 / (its input channels), so a structure whose channels all equal
a grey image g gives exactly the pretrained conv's response to the RGB image (g, g, g) (timm's
`adapt_input_conv` uses the same 3/C scaling). The `cifar` stem's 3x3 conv has no pretrained
counterpart and keeps its fresh initialisation; every other layer loads the pretrained weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet18_Weights
from torchvision.models import resnet18 as torchvision_resnet18

from models.design.nets.layout_statistics import COUNT as LAYOUT_STATISTICS
from models.design.nets.layout_statistics import HIERARCHY_CHANNEL, TEXT_ROLES, layout_statistics
from models.design.nets.layout_statistics import TEXT as TEXT_CHANNEL
from models.design.schema import FORMATS, GOALS, GRAMMAR_NAMES, HIERARCHY, STRUCTURE_CHANNELS, TONE_AXES
from training.toolkit.errors import UserError

STEMS = ("imagenet", "cifar")
PRETRAINED = (None, "imagenet")
IMAGENET_WEIGHTS_URL = ResNet18_Weights.IMAGENET1K_V1.url
IMAGENET_WEIGHTS_FILE = Path(IMAGENET_WEIGHTS_URL).name  # resnet18-f37072fd.pth
FEATURE_DIM = 512
LOG_SCALE = 0.003  # symlog's linear range, in design fractions: a third of a pixel of a 128² design's width
BODY_CHANNELS = 512  # ResNet-18's last stage
ROLE_POOLED_CHANNELS = len(TEXT_ROLES) * (64 + 128)  # layer1 and layer2 over each role's ink (`role_pooling`)


def default_weights_path() -> Path:
    """Where torchvision caches the ImageNet ResNet-18 weights: $TORCH_HOME/hub/checkpoints/."""
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_WEIGHTS_FILE


def adapt_first_conv(rgb_weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """(out, 3, k, k) pretrained RGB filters -> (out, in_channels, k, k): their mean, scaled by 3/in_channels."""
    mean = rgb_weight.mean(dim=1, keepdim=True)
    return mean.expand(-1, in_channels, -1, -1) * (3.0 / in_channels)


def _mlp(in_features: int, hidden: int, out_features: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, out_features),
    )


def symlog(values: torch.Tensor) -> torch.Tensor:
    """sign(x) * ln(1 + |x| / LOG_SCALE): as fine near zero as far from it. Line edges spread by 0, a third
    of a pixel and one pixel of a 128² design read 0, 0.6 and 1.3 here, but lie a few hundredths of the
    feature's range apart on the linear scale, and that is where the grammar's alignment is decided."""
    return values.sign() * torch.log1p(values.abs() / LOG_SCALE)


def role_masks(structure: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W): the text ink of the headline, subhead and body, told apart by the hierarchy channel
    (HIERARCHY values at least 0.2 apart; soft, within 0.1, so the encoder's soft output reads too)."""
    levels = torch.tensor([HIERARCHY[role] for role in TEXT_ROLES]).to(structure)[None, :, None, None]
    nearness = (
        1.0 - (structure[:, HIERARCHY_CHANNEL : HIERARCHY_CHANNEL + 1] - levels).abs() / 0.1
    ).clamp_min(0)
    return structure[:, TEXT_CHANNEL : TEXT_CHANNEL + 1] * nearness


def mean_over(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) feature maps averaged over each of `masks` (B, M, H, W) area-resized to (h, w):
    (B, M * C), zero for an empty mask."""
    weights = F.interpolate(masks, size=maps.shape[-2:], mode="area")
    sums = torch.einsum("bchw,bmhw->bmc", maps, weights)
    return (sums / weights.sum((2, 3))[..., None].clamp_min(1e-6)).flatten(1)


class Abstractor(nn.Module):
    """ResNet-18 over structure channels with a V_Meta head and a V_Grammar head."""

    def __init__(
        self,
        stem: str = "imagenet",
        pretrained: str | None = None,
        weights_path: str | None = None,
        head_hidden: int = 256,
        dropout: float = 0.0,
        input_size: int | None = None,
        space_to_depth: int = 1,
        role_pooling: bool = False,
        layout_statistics: bool = False,
        log_statistics: bool = False,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.fold = nn.PixelUnshuffle(space_to_depth) if space_to_depth > 1 else nn.Identity()
        in_channels = STRUCTURE_CHANNELS * space_to_depth**2
        if stem not in STEMS:
            raise UserError(f"model.net.stem={stem!r} is not one of {', '.join(STEMS)}.")
        if pretrained not in PRETRAINED:
            raise UserError(f"model.net.pretrained={pretrained!r} must be null or imagenet.")
        body = torchvision_resnet18(weights=None)
        if stem == "imagenet":
            body.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            body.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            body.maxpool = nn.Identity()
        nn.init.kaiming_normal_(body.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision
        body.fc = nn.Identity()  # the body ends at the global pool: (B, 512)
        self.body = body
        if pretrained == "imagenet":
            self._load_imagenet(weights_path, stem)
        self.role_pooling = role_pooling
        pooled = BODY_CHANNELS + (ROLE_POOLED_CHANNELS if role_pooling else 0)
        # the measured layout (counts, fractions, colours on different scales) enters standardised
        if log_statistics and not layout_statistics:
            raise UserError(
                "model.net.log_statistics=true adds a log scale to the layout statistics: set "
                "model.net.layout_statistics=true as well, or log_statistics=false."
            )
        self.log_statistics = log_statistics
        statistics = LAYOUT_STATISTICS * (2 if log_statistics else 1) if layout_statistics else 0
        self.statistics_norm = nn.BatchNorm1d(statistics) if layout_statistics else None
        pooled += statistics
        self.embedding = nn.Sequential(nn.Linear(pooled, FEATURE_DIM), nn.ReLU(inplace=True))
        self.meta_head = _mlp(FEATURE_DIM, head_hidden, len(GOALS) + len(FORMATS) + len(TONE_AXES), dropout)
        self.grammar_head = _mlp(FEATURE_DIM, head_hidden, len(GRAMMAR_NAMES), dropout)

    def features(self, structure: torch.Tensor) -> torch.Tensor:
        """(B, STRUCTURE_CHANNELS, H, W) -> the FC-512 embedding (B, 512) both heads read. With `input_size`
        the structure is first area-resized to that side (averaging masks into coverage fractions and colours
        into mean colours), then folded by `space_to_depth`."""
        if self.input_size is not None and structure.shape[-1] != self.input_size:
            structure = F.interpolate(structure, size=(self.input_size, self.input_size), mode="area")
        body = self.body
        x = body.maxpool(body.relu(body.bn1(body.conv1(self.fold(structure)))))
        masks = role_masks(structure) if self.role_pooling else None
        pooled = []
        for layer in (body.layer1, body.layer2, body.layer3, body.layer4):
            x = layer(x)
            if masks is not None and layer in (body.layer1, body.layer2):
                pooled.append(mean_over(x, masks))
        pooled.append(torch.flatten(body.avgpool(x), 1))
        features = torch.cat(pooled[::-1], dim=1)  # the global pool first, then the role pools
        if self.statistics_norm is not None:
            statistics = layout_statistics(structure)
            if self.log_statistics:
                statistics = torch.cat([statistics, symlog(statistics)], dim=1)
            features = torch.cat([features, self.statistics_norm(statistics)], dim=1)
        return self.embedding(features)

    def forward(self, structure: torch.Tensor) -> dict[str, torch.Tensor]:
        """Goal and format logits, tone and grammar in [0, 1]."""
        features = self.features(structure)
        goal, format_, tone = self.meta_head(features).split(
            [len(GOALS), len(FORMATS), len(TONE_AXES)], dim=1
        )
        return {
            "goal": goal,
            "format": format_,
            "tone": torch.sigmoid(tone),
            "grammar": torch.sigmoid(self.grammar_head(features)),
        }

    def _load_imagenet(self, weights_path: str | None, stem: str) -> None:
        """Load torchvision's ImageNet ResNet-18 into the body (strictly), first conv adapted (module doc)."""
        key = "model.net.weights_path"
        path = Path(weights_path).expanduser() if weights_path else default_weights_path()
        if not path.is_file():
            where = f"{key}={path}" if weights_path else f"{key} is null and {path}"
            raise UserError(
                f"model.net.pretrained=imagenet needs torchvision's ResNet-18 ImageNet weights, but {where} "
                f"does not exist (nothing is downloaded: these machines may be offline). Download "
                f"{IMAGENET_WEIGHTS_URL} on a machine with internet and put it at {default_weights_path()} "
                f"(torchvision's cache under $TORCH_HOME), or set {key}=/path/to/{IMAGENET_WEIGHTS_FILE}, "
                "or train from scratch with model.net.pretrained=null."
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise UserError(f"{key}={path} is not a readable PyTorch weights file ({err}).") from err
        state = {name: value for name, value in state.items() if not name.startswith("fc.")}
        rgb = state.get("conv1.weight")
        if rgb is None or rgb.shape != (64, 3, 7, 7):
            raise UserError(
                f"{key}={path} holds no torchvision ResNet-18 first conv (conv1.weight, 64x3x7x7)."
            )
        if stem == "imagenet":
            state["conv1.weight"] = adapt_first_conv(rgb, self.body.conv1.in_channels)
        else:  # the cifar stem's 3x3 conv has no pretrained counterpart: it keeps its initialisation
            state["conv1.weight"] = self.body.conv1.weight.detach().clone()
        try:
            self.body.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise UserError(f"{key}={path} does not hold torchvision ResNet-18 weights: {err}") from err
