"""Opening one image file, with an error that names the file when it is not a readable image."""

from __future__ import annotations

import os

from PIL import Image

from training.toolkit.errors import UserError


def open_rgb(path: str | os.PathLike, key: str | None = None) -> Image.Image:
    """The image at `path` as RGB; a UserError naming the file (and the config `key` that led to it) if it
    cannot be read: not an image, truncated, or unreadable. Picklable with functools.partial (workers)."""
    try:
        with Image.open(path) as file:
            return file.convert("RGB")
    except (
        OSError,
        ValueError,
        SyntaxError,
    ) as err:  # PIL's errors for bad files (UnidentifiedImageError is OSError)
        where = f" of {key}" if key else ""
        raise UserError(
            f"Cannot read the image file {path}{where} ({type(err).__name__}: {err}). It is not an image PIL can "
            "open, or it is truncated or unreadable: replace or remove the file, or point the config at a folder "
            "of readable images."
        ) from None
