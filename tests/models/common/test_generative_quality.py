"""FID/KID with baselines: the torchmetrics wiring equals the closed-form distances, baselines order as they
must, subset sizes clamp, too-small sets fail clearly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from models.common.feature_extractors import ImageFeatures
from models.common.generative_quality import (
    NOISE,
    REAL_VS_REAL,
    FeatureDistances,
    noise_images,
    quality_table,
    relative_distance,
)
from training.toolkit.errors import UserError

SIZE = 8  # images are (3, 8, 8)


class PooledColours(ImageFeatures):
    """Fixed features whose values the tests can recompute in numpy: 2x2-pooled colours in [0, 1] (12-d)."""

    name = "pooled_colours"
    num_features = 12

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(images.float() / 255, 2).flatten(1)


def numpy_features(images: torch.Tensor) -> np.ndarray:
    x = images.double().numpy() / 255
    return x.reshape(x.shape[0], 3, 2, SIZE // 2, 2, SIZE // 2).mean(axis=(3, 5)).reshape(x.shape[0], -1)


def design_like(count: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """uint8 images: per-quadrant colours drawn around a mean (moved by `shift`), plus pixel noise."""
    rng = np.random.default_rng(seed)
    quadrants = rng.normal(100 + shift, 30, size=(count, 3, 2, 1, 2, 1))
    pixels = quadrants + rng.normal(0, 10, size=(count, 3, 2, SIZE // 2, 2, SIZE // 2))
    return torch.from_numpy(np.clip(pixels, 0, 255).round().astype(np.uint8).reshape(count, 3, SIZE, SIZE))


def batches(images: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    return list(images.split(batch_size))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def unbiased_mmd(a: np.ndarray, b: np.ndarray) -> float:
    """KID's MMD² with the cubic polynomial kernel k(x, y) = (x·y / d + 1)³ over the whole sets."""
    m, d = a.shape
    k_aa, k_bb, k_ab = ((x @ y.T / d + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    off_diagonal = k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)
    return float(off_diagonal / (m * (m - 1)) - 2 * k_ab.sum() / m**2)


def test_fid_of_a_set_against_itself_is_zero():
    images = design_like(40, seed=0)
    distances = FeatureDistances(PooledColours(), batches(images, 16), subset_size=40, subsets=2)
    assert distances("same", batches(images, 16))["fid/same"] == pytest.approx(0.0, abs=1e-9)


def test_fid_equals_the_closed_form_frechet_distance():
    reference, shifted = design_like(64, seed=0), design_like(48, seed=1, shift=25.0)
    distances = FeatureDistances(PooledColours(), batches(reference, 20), subset_size=48, subsets=3)
    fid = distances("shifted", batches(shifted, 20))["fid/shifted"]
    expected = frechet_distance(numpy_features(reference), numpy_features(shifted))
    assert expected > 0.05
    assert fid == pytest.approx(expected, rel=1e-6)  # the extractor computes in float32


def test_kid_over_whole_sets_equals_the_unbiased_mmd_and_subset_size_clamps_to_the_smaller_set():
    reference, shifted = design_like(9, seed=2), design_like(9, seed=3, shift=40.0)
    distances = FeatureDistances(PooledColours(), batches(reference, 4), subset_size=1000, subsets=3)
    result = distances("shifted", batches(shifted, 4))
    assert distances.kid.subset_size == 9  # every subset is the whole set: no randomness left
    assert result["kid/shifted"] == pytest.approx(
        unbiased_mmd(numpy_features(reference), numpy_features(shifted))
    )
    assert result["kid_std/shifted"] == pytest.approx(0.0, abs=1e-12)
    distances("fewer", batches(shifted[:5], 4))
    assert distances.kid.subset_size == 5


def test_kid_subsets_are_reproducible_with_the_seed():
    reference, shifted = design_like(30, seed=4), design_like(30, seed=5, shift=20.0)

    def kid(seed: int) -> float:
        distances = FeatureDistances(PooledColours(), [reference], subset_size=10, subsets=5, seed=seed)
        return distances("shifted", [shifted])["kid/shifted"]

    assert kid(0) == kid(0) != kid(1)


def test_streamed_batches_give_the_same_distances_as_one_batch():
    reference, shifted = design_like(30, seed=6), design_like(25, seed=7, shift=10.0)
    whole = FeatureDistances(PooledColours(), [reference], subset_size=25, subsets=1)("x", [shifted])
    streamed = FeatureDistances(PooledColours(), iter(batches(reference, 7)), subset_size=25, subsets=1)(
        "x", (batch for batch in batches(shifted, 4))
    )
    assert streamed == pytest.approx(whole, rel=1e-9)


def test_baselines_order_real_then_other_distribution_then_noise_and_relative_places_the_model():
    table = quality_table(
        PooledColours(),
        batches(design_like(120, seed=8), 32),
        {
            "model": batches(design_like(120, seed=9, shift=15.0), 32),
            REAL_VS_REAL: batches(design_like(120, seed=10), 32),
            NOISE: noise_images(120, (3, SIZE, SIZE), batch_size=32, seed=0),
        },
        subset_size=50,
        subsets=10,
    )
    for metric in ("fid", "kid"):
        assert table[f"{metric}/{REAL_VS_REAL}"] < table[f"{metric}/model"] < table[f"{metric}/{NOISE}"]
        assert 0 < table[f"{metric}_relative/model"] < 1
        assert table[f"{metric}_relative/model"] == relative_distance(table, metric, "model")
    assert f"fid_relative/{NOISE}" not in table and f"fid_relative/{REAL_VS_REAL}" not in table


def test_relative_distance_is_zero_at_real_and_one_at_noise():
    table = {"fid/real_vs_real": 2.0, "fid/noise": 12.0, "fid/model": 4.5, "fid/bad": 14.0}
    assert relative_distance(table, "fid", "model") == pytest.approx(0.25)
    assert relative_distance(table, "fid", "bad") == pytest.approx(1.2)
    assert relative_distance(table, "fid", "real_vs_real") == 0.0


def test_no_relative_distances_without_both_baselines():
    images = design_like(10, seed=11)
    table = quality_table(PooledColours(), [images], {"model": [images], NOISE: [images]}, subset_size=5)
    assert set(table) == {f"{m}/{name}" for m in ("fid", "kid", "kid_std") for name in ("model", NOISE)}


def test_a_set_of_fewer_than_two_images_is_a_user_error_naming_the_set_and_config():
    images = design_like(5, seed=12)
    with pytest.raises(UserError, match=r"'reference'.*1 image.*model\.quality"):
        FeatureDistances(PooledColours(), [images[:1]], config_key="model.quality")
    distances = FeatureDistances(PooledColours(), [images], subset_size=4)
    with pytest.raises(UserError, match=r"'model' image set .* 0 image"):
        distances("model", [])


def test_images_must_be_uint8_rgb_batches():
    with pytest.raises(ValueError, match=r"'reference' must hold uint8 \(B, 3, H, W\)"):
        FeatureDistances(PooledColours(), [design_like(4, seed=0).float()])


def test_noise_images_are_seeded_uniform_uint8_in_batches():
    first = list(noise_images(10, (3, 4, 4), batch_size=4, seed=3))
    assert [batch.shape[0] for batch in first] == [4, 4, 2]
    assert all(batch.dtype == torch.uint8 and batch.shape[1:] == (3, 4, 4) for batch in first)
    assert torch.equal(torch.cat(first), torch.cat(list(noise_images(10, (3, 4, 4), batch_size=4, seed=3))))
    many = torch.cat(list(noise_images(200, (3, 8, 8), batch_size=64)))
    assert many.min() == 0 and many.max() == 255
    assert many.double().mean() == pytest.approx(127.5, abs=1.0)
