"""Procedural prints: deterministic, flat pigment colours, every scene, the same composition at any size."""

from __future__ import annotations

import numpy as np
import pytest

from datamodules.ukiyoe.procedural import SCENES, render_print
from models.ukiyoe.schema import PIGMENTS

PIGMENT_SET = {tuple(colour) for colour in PIGMENTS.values()}


def test_a_print_is_the_same_bytes_every_time_and_differs_by_seed_split_and_index() -> None:
    image, label = render_print(5, 32, seed=3)
    again, label_again = render_print(5, 32, seed=3)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert np.array_equal(image, again) and label == label_again
    for other in (
        render_print(5, 32, seed=4),
        render_print(5, 32, seed=3, split="val"),
        render_print(9, 32, 3),
    ):
        assert not np.array_equal(image, other[0])


@pytest.mark.parametrize("resolution", [32, 64])
def test_every_pixel_is_a_pigment_and_a_print_has_few_flat_colours(resolution: int) -> None:
    flat = []
    for index in range(24):
        image, _ = render_print(index, resolution)
        colours = {tuple(c) for c in np.unique(image.reshape(-1, 3), axis=0)}
        assert colours <= PIGMENT_SET
        assert 3 <= len(colours) <= 9
        # Flat fills: most pixels share their colour with the right-hand neighbour.
        flat.append((image[:, 1:] == image[:, :-1]).all(-1).mean())
    assert min(flat) > 0.55 and np.mean(flat) > 0.75


def test_the_traditional_pigments_are_there() -> None:
    for name in ("prussian_blue", "indigo", "vermilion", "ochre", "sumi", "paper"):
        assert name in PIGMENTS
    assert sum(PIGMENTS["sumi"]) < 100 and sum(PIGMENTS["paper"]) > 600


def test_scenes_are_balanced_and_look_like_their_scene() -> None:
    labels = [render_print(i, 32)[1] for i in range(40)]
    assert sorted(set(labels)) == list(range(len(SCENES)))
    assert np.bincount(labels).tolist() == [10] * len(SCENES)
    blue = np.array(PIGMENTS["prussian_blue"])
    wave = SCENES.index("wave")
    for index in (i for i in range(40) if labels[i] == wave):
        bottom = render_print(index, 32)[0][22:]
        assert (bottom == blue).all(-1).mean() > 0.4  # breaking waves fill the lower third


def test_a_print_has_the_same_composition_at_32_and_64_pixels() -> None:
    for index in range(8):
        small, large = render_print(index, 32)[0], render_print(index, 64)[0]
        assert (large[::2, ::2] == small).all(-1).mean() > 0.6


def test_a_too_small_resolution_is_refused() -> None:
    with pytest.raises(ValueError, match="resolution=4"):
        render_print(0, 4)
