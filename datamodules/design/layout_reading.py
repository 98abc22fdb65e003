"""`read_layout`: the renderer run backwards — an F_Tensor -> the Layout its pixels show, for the analytic grammar.

Generated images have no layout, only pixels; the encoder reads their F_Tensor, and this module rebuilds
from it the boxes, colours and sizes `grammar.grammar_scores` reads, so a sample gets the renderer's own
analytic scores (phase 3 reports them beside the learned judge's, which the fine-tune could fool; these
have no weights to fool). What the pixels cannot say is estimated:
- text lines: each hierarchy role's text ink, split into runs of inked rows (one run per line); a line's
  box is its ink's extent, its size the role's median ink height in pixels (the grammar reads only size
  ratios between roles, which ink heights keep);
- image blocks: connected image-mask regions; panels: connected regions inside the format of neither text,
  image nor the background colour (the most common one there), a frame when they fill under half their box;
- the page margin (the alignment guides): the smallest gap between an element and the format's side.
How far this reading is from the true scores is measured on real designs (`tests/datamodules/design/
test_layout_reading.py`, and docs/design.md for the encoder's reading of real and sampled designs).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from datamodules.design.grammar import grammar_scores
from datamodules.design.layout import TEXT_ROLES, Box, ImageBlock, Layout, Panel, TextLine
from models.design.schema import COLOR_ID_RGB, COLOR_OUTSIDE, F_COLOR, F_HIERARCHY, F_IMAGE, F_TEXT, HIERARCHY

MIN_REGION = 4  # pixels: image or panel regions smaller than this are read as noise
FRAME_FILL = 0.5  # a panel region covering less of its box than this is a frame (an outline)
TEXT_LEVELS = np.array([HIERARCHY[role] for role in TEXT_ROLES])


def read_grammar(f_tensor: np.ndarray) -> np.ndarray:
    """float32 (4,) analytic grammar of the layout an F_Tensor (4, R, R) shows; 0 for each score when it shows
    no format at all (a sample with no design in it has none of the qualities)."""
    layout = read_layout(f_tensor)
    return grammar_scores(layout) if layout is not None else np.zeros(4, dtype=np.float32)


def read_layout(f_tensor: np.ndarray) -> Layout | None:
    """float F_Tensor (4, R, R) in the schema's layout -> its Layout at resolution R; None when no pixel is
    inside a format (nothing to score)."""
    resolution = f_tensor.shape[-1]
    ids = np.rint(f_tensor[F_COLOR]).astype(np.int64)
    inside = ids != COLOR_OUTSIDE
    if not inside.any():
        return None
    text = (f_tensor[F_TEXT] > 0.5) & inside
    image = (f_tensor[F_IMAGE] > 0.5) & inside & ~text
    plain = inside & ~text & ~image
    background = (
        int(np.bincount(ids[plain]).argmax()) if plain.any() else int(np.bincount(ids[inside]).argmax())
    )
    palette: dict[int, int] = {}  # colour ID -> palette entry

    def entry(color_id: int) -> int:
        return palette.setdefault(color_id, len(palette))

    lines = _text_lines(text, f_tensor[F_HIERARCHY], ids, resolution, entry)
    images = tuple(
        ImageBlock(box, texture="", colors=(), seed=0, shading=0.0)
        for box, _, _ in _regions(image, ids, resolution)
    )
    panels = tuple(
        Panel(box, shape, entry(color_id), thickness)
        for box, color_id, (shape, thickness) in _regions(
            plain & (ids != background), ids, resolution, text | image
        )
    )
    design = _box(*np.nonzero(inside), resolution)
    return Layout(
        resolution=resolution,
        design=design,
        margin=_margin(design, [line.box for line in lines] + [block.box for block in images]),
        background=_rgb(background),
        palette=tuple(_rgb(color_id) for color_id in palette),
        panels=panels,
        images=images,
        lines=lines,
    )


def _text_lines(text, hierarchy, ids, resolution, entry) -> tuple[TextLine, ...]:
    """One TextLine per run of inked rows of each role (the role nearest each ink pixel's hierarchy level)."""
    roles = np.abs(hierarchy[..., None] - TEXT_LEVELS).argmin(axis=-1)
    lines = []
    for index, role in enumerate(TEXT_ROLES):
        ink = text & (roles == index)
        runs = _row_runs(ink.any(axis=1))
        if not runs:
            continue
        size = float(np.median([end - start for start, end in runs]))
        for start, end in runs:
            rows, cols = np.nonzero(ink[start:end])
            x0, y0, x1, y1 = _box(rows + start, cols, resolution)
            color = entry(int(np.bincount(ids[start:end][ink[start:end]]).argmax()))
            lines.append(TextLine(role, "", x0, y0, size, "left", color, x1 - x0, y1 - y0))
    return tuple(lines)


def _row_runs(inked: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of consecutive True rows."""
    edges = np.diff(np.concatenate([[0], inked.astype(np.int8), [0]]))
    return list(zip(np.nonzero(edges == 1)[0].tolist(), np.nonzero(edges == -1)[0].tolist(), strict=True))


def _regions(mask, ids, resolution, covering=None):
    """(box, colour ID, (shape, thickness)) of each connected region of `mask` of MIN_REGION pixels or more;
    pixels of `covering` (drawn over the region) count as the region's when measuring how full its box is."""
    labels, _ = ndimage.label(mask)
    regions = []
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        region = labels[found] == index
        size = int(region.sum())
        if size < MIN_REGION:
            continue
        rows, cols = np.nonzero(region)
        box = _box(rows + found[0].start, cols + found[1].start, resolution)
        filled = size + (int(covering[found][~region].sum()) if covering is not None else 0)
        height, width = region.shape
        shape = (
            ("rect", 0.0)
            if filled >= FRAME_FILL * region.size
            else ("frame", size / (2 * (height + width)) / resolution)
        )
        regions.append((box, int(np.bincount(ids[found][region]).argmax()), shape))
    return regions


def _box(rows: np.ndarray, cols: np.ndarray, resolution: int) -> Box:
    """The pixel extent of (rows, cols) in canvas units."""
    return (
        cols.min() / resolution,
        rows.min() / resolution,
        (cols.max() + 1) / resolution,
        (rows.max() + 1) / resolution,
    )


def _margin(design: Box, boxes: list[Box]) -> float:
    """The smallest gap between an element and the format's left or right side (0 without elements)."""
    if not boxes:
        return 0.0
    return max(0.0, min(min(box[0] - design[0], design[2] - box[2]) for box in boxes))


def _rgb(color_id: int) -> tuple[int, int, int]:
    return tuple(int(value) for value in COLOR_ID_RGB[color_id])
