"""Source photos of the procedural prints: the images that ship inside scikit-image, posterised into flat levels.

The photos are loaded once per process as greyscale, shrunk so their shorter side is `SOURCE_SIDE` pixels
and pre-blurred, so a print only samples a crop (nearest neighbour) and never touches a full-size photo.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

# Shipped inside the scikit-image wheel (no download); eagle, lily and skin are fetched on demand: not used.
PHOTO_NAMES = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)
# Photos with one large subject (the rest are textures): the "figure" scene crops only these.
SUBJECTS = ("astronaut", "camera", "cat", "chelsea", "clock", "coffee", "coins", "horse", "moon", "rocket")
SOURCE_SIDE = 160  # shorter side of a cached photo: a crop of it is at most 160 px, enough detail for 128 px


def _greyscale(image: np.ndarray) -> np.ndarray:
    """float32 luminance in [0, 1] of a skimage.data image (bool mask, grey, RGB or RGBA over white)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        return image / max(float(image.max()), 1.0)
    rgb = image[..., :3] / 255.0
    if image.shape[-1] == 4:
        alpha = image[..., 3:] / 255.0
        rgb = rgb * alpha + (1.0 - alpha)
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


@lru_cache(maxsize=1)
def source_photos() -> tuple[np.ndarray, ...]:
    """Every photo of PHOTO_NAMES as float32 greyscale, shorter side SOURCE_SIDE, lightly blurred."""
    import skimage.data
    from skimage.transform import resize

    photos = []
    for name in PHOTO_NAMES:
        grey = _greyscale(getattr(skimage.data, name)())
        scale = SOURCE_SIDE / min(grey.shape)
        shape = (round(grey.shape[0] * scale), round(grey.shape[1] * scale))
        small = resize(grey, shape, anti_aliasing=True, preserve_range=True).astype(np.float32)
        photos.append(ndimage.gaussian_filter(small, 1.0))
    return tuple(photos)


def posterised_crop(
    rng: np.random.Generator,
    resolution: int,
    levels: int,
    zoom: tuple[float, float],
    names: tuple[str, ...] = PHOTO_NAMES,
) -> np.ndarray:
    """int (R, R) levels 0 (dark) .. levels-1 (light) of a random square crop of a random photo of `names`.

    The crop's side is a `zoom` share of the photo's shorter side; thresholds are quantiles of the crop
    (so every level covers some area) and a median filter removes single-pixel speckle: flat regions.
    """
    photo = source_photos()[PHOTO_NAMES.index(names[rng.integers(len(names))])]
    side = rng.uniform(*zoom) * min(photo.shape)
    top = rng.uniform(0, photo.shape[0] - side)
    left = rng.uniform(0, photo.shape[1] - side)
    steps = (np.arange(resolution) + 0.5) * (side / resolution)
    rows = (top + steps).astype(np.intp)
    cols = (left + steps).astype(np.intp)
    if rng.random() < 0.5:
        cols = cols[::-1]
    # Smoothing at the print's own scale keeps fine texture (gravel, grass) from breaking into speckle.
    crop = ndimage.gaussian_filter(photo[rows[:, None], cols[None, :]], resolution / 32)
    # Roughly equal areas per level, jittered so prints of one photo differ.
    shares = (np.arange(1, levels) + rng.uniform(-0.3, 0.3, levels - 1)) / levels
    ordered = np.sort(crop, axis=None)
    labels = np.searchsorted(ordered[(shares * ordered.size).astype(np.intp)], crop).astype(np.int8)
    return ndimage.median_filter(labels, size=3, mode="nearest")
