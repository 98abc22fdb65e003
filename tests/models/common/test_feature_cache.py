"""The FID feature cache: a hit needs the same extractor and the same pixels, gives the same numbers as
extracting again, and a damaged file is extracted again rather than trusted."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.common.feature_cache import CachedFeatures
from models.common.feature_extractors import ImageFeatures
from models.common.generative_quality import NOISE, REAL_VS_REAL, quality_table
from tests.models.common.test_generative_quality import PooledColours, batches, design_like


class CountingColours(PooledColours):
    """PooledColours that counts the images it extracts, with one weight so that its identity has a hash."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale), requires_grad=False)
        self.images_seen = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.images_seen += len(images)
        return super().forward(images) * self.scale


def test_the_second_extraction_of_the_same_pixels_reads_the_file_and_returns_the_same_features(tmp_path):
    extractor = CountingColours()
    cached = CachedFeatures(extractor, tmp_path)
    images = design_like(6, seed=0)
    first = cached(images)
    again = cached(images.clone())  # the same pixels in another tensor
    assert extractor.images_seen == 6
    assert torch.equal(first, again)
    assert cached.identity == extractor.identity and cached.name == extractor.name
    assert len(list(tmp_path.rglob("*.npy"))) == 1


def test_other_pixels_or_other_weights_are_extracted_again(tmp_path):
    images = design_like(6, seed=0)
    extractor = CountingColours()
    cached = CachedFeatures(extractor, tmp_path)
    cached(images)
    changed = images.clone()
    changed[0, 0, 0, 0] ^= 1  # one bit of one pixel
    cached(changed)
    assert extractor.images_seen == 12
    reweighted = CountingColours(scale=2.0)
    features = CachedFeatures(reweighted, tmp_path)(images)
    assert reweighted.images_seen == 6
    assert torch.allclose(features, 2 * PooledColours()(images))


def test_a_damaged_or_wrong_file_is_extracted_again_and_replaced(tmp_path):
    images = design_like(4, seed=1)
    extractor = CountingColours()
    cached = CachedFeatures(extractor, tmp_path)
    expected = cached(images)
    (path,) = tmp_path.rglob("*.npy")
    for damage in (b"not an array", None):
        if damage is None:
            np.save(path, np.zeros((3, 12), dtype=np.float32))  # an array, but not this batch's shape
        else:
            path.write_bytes(damage)
        assert torch.equal(cached(images), expected)
    assert extractor.images_seen == 12
    assert np.array_equal(np.load(path, allow_pickle=False), expected.numpy())


def test_a_quality_table_with_the_cache_equals_one_without_and_extracts_the_shared_sets_once(tmp_path):
    reference, real, fake = design_like(40, 0), design_like(40, 1), design_like(40, 2, shift=20)
    noise = torch.randint(
        0, 256, (40, 3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )

    def table(extractor: ImageFeatures, cache) -> dict:
        candidates = {REAL_VS_REAL: batches(real, 16), "model": batches(fake, 16), NOISE: batches(noise, 16)}
        return quality_table(
            extractor, batches(reference, 16), candidates, subset_size=20, subsets=10, feature_cache=cache
        )

    plain = table(CountingColours(), None)
    extractor = CountingColours()
    cold, warm = table(extractor, tmp_path), table(extractor, tmp_path)
    assert extractor.images_seen == 160  # the second table read every set from the files
    assert dict(cold) == dict(warm) == dict(plain)
    assert warm.features == plain.features
