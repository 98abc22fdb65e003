"""Reading designs with a trained encoder at the resolution its run trained at (later stages' view of it).

The encoder's U-Net is fully convolutional and runs at any size divisible by 2**depth, but what it learned
holds at the scale of its training data: a design of another size is resized to that resolution, read,
and its F_Tensor resized back (nearest, so masks and colour IDs keep exact values).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from training.toolkit.checkpoints import stored_config


def trained_resolution(checkpoint: str | os.PathLike) -> int | None:
    """The `data.resolution` a run trained at, from its checkpoint's stored run config (None if unrecorded)."""
    config = stored_config(checkpoint, str(checkpoint)) or {}
    return (config.get("data") or {}).get("resolution")


def encoder_f_tensor(encoder: torch.nn.Module, image: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """`encoder.predict_f_tensor` of `image` (B, 3, H, W) in [-1, 1], read at `resolution` (None: at H x W)
    and answered at H x W: bilinear (antialiased) resize of the image there, nearest resize of the F_Tensor back."""
    size = tuple(image.shape[-2:])
    if resolution is None or size == (resolution, resolution):
        return encoder.predict_f_tensor(image)
    return F.interpolate(encoder.predict_f_tensor(resize_image(image, resolution)), size=size, mode="nearest")


def resize_image(image: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """`image` (B, C, H, W) resized to `resolution` x `resolution` (bilinear, antialiased); as is if None or equal."""
    if resolution is None or tuple(image.shape[-2:]) == (resolution, resolution):
        return image
    return F.interpolate(
        image, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
    )
