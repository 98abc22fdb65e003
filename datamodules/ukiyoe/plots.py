"""A contact sheet of procedural prints (`python -m datamodules.ukiyoe plot out=FILE.png`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from datamodules.ukiyoe.procedural import render_print


def print_grid(num: int, resolution: int, seed: int = 0, columns: int = 8, gap: int = 2) -> np.ndarray:
    """uint8 image of prints 0..num-1 in rows of `columns`, on a light grey ground."""
    rows = -(-num // columns)
    cell = resolution + gap
    sheet = np.full((rows * cell + gap, columns * cell + gap, 3), 200, dtype=np.uint8)
    for index in range(num):
        row, column = divmod(index, columns)
        y, x = gap + row * cell, gap + column * cell
        sheet[y : y + resolution, x : x + resolution] = render_print(index, resolution, seed)[0]
    return sheet


def plot_prints(
    path: str | os.PathLike,
    num: int = 32,
    resolutions: tuple[int, ...] = (64, 32),
    seed: int = 0,
    scale: int = 2,
) -> Path:
    """Save grids of the same `num` prints at each resolution, stacked, each upscaled (nearest) to the
    largest resolution times `scale`, so flat colours and pixel edges stay visible."""
    largest = max(resolutions)
    sheets = []
    for resolution in resolutions:
        sheet = print_grid(num, resolution, seed)
        factor = scale * largest // resolution
        sheets.append(sheet.repeat(factor, axis=0).repeat(factor, axis=1))
    width = max(s.shape[1] for s in sheets)
    stacked = np.concatenate(
        [np.pad(s, ((0, 8), (0, width - s.shape[1]), (0, 0)), constant_values=255) for s in sheets]
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(stacked).save(path)
    return path
