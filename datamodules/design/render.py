"""Draw a Layout into P_Image and its F_Tensor at one resolution; `render_design` makes sample i of a split.

Text is drawn with Pillow's bundled FreeType font in bilevel mode (no anti-aliasing): every glyph
pixel is either ink, exactly the text colour, or untouched. The text mask is that ink (not the
line's bounding box), so the F_Tensor matches the picture pixel for pixel: the layout's colours are
colour-vocabulary colours, the colour-ID map holds their IDs, and the picture is drawn from the IDs, so
outside image blocks every pixel is exactly `schema.COLOR_ID_RGB[colour ID]`; inside them it differs
only by the block's shading factor. Elements are clipped to the format's rectangle; the letterbox is
COLOR_OUTSIDE.

The structure is stored as uint8 (`structure`); `decode_structure` turns it into the float F_Tensor,
so stored and on-the-fly samples are the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from datamodules.design.grammar import grammar_scores
from datamodules.design.layout import Layout, shape_coverage
from datamodules.design.metadata import DesignMeta, sample_metadata
from datamodules.design.planner import plan_layout
from datamodules.design.textures import shading, texture_labels
from datamodules.design.typography import font, pixel_size
from models.design.color_science import RGB
from models.design.color_vocabulary import ENTRY_OF_RGB
from models.design.schema import (
    COLOR_ID_RGB,
    COLOR_OUTSIDE,
    F_COLOR,
    F_HIERARCHY,
    F_IMAGE,
    F_TEXT,
    HIERARCHY,
)

SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}  # each split draws from its own seed stream
HIERARCHY_SCALE = 100  # the structure stores hierarchy levels as round(level * 100)
LABEL_SPECS = {
    "goal": (np.int64, ()),
    "format": (np.int64, ()),
    "tone": (np.float32, (2,)),
    "grammar": (np.float32, (4,)),
}
ANCHORS = {"left": "la", "centre": "ma", "right": "ra"}  # Pillow anchors at the ascender line


@dataclass(frozen=True)
class RenderedDesign:
    """One sample: picture, structure and labels, plus the layout they were made from."""

    image: np.ndarray  # uint8 (3, R, R)
    structure: np.ndarray  # uint8 (4, R, R): text, image, colour-ID, hierarchy * HIERARCHY_SCALE
    meta: DesignMeta
    grammar: np.ndarray  # float32 (4,), GRAMMAR_NAMES order
    layout: Layout

    def arrays(self) -> dict[str, np.ndarray]:
        """What is stored per sample: image, structure and the LABEL_SPECS labels, as numpy arrays."""
        labels = {
            "goal": self.meta.goal_index,
            "format": self.meta.format_index,
            "tone": self.meta.tone,
            "grammar": self.grammar,
        }
        arrays = {name: np.asarray(labels[name], dtype) for name, (dtype, _) in LABEL_SPECS.items()}
        return {"image": self.image, "structure": self.structure, **arrays}


def decode_structure(structure: np.ndarray) -> np.ndarray:
    """uint8 structure (..., 4, H, W) -> float32 F_Tensor of the schema (hierarchy back in [0, 1])."""
    f_tensor = structure.astype(np.float32)
    f_tensor[..., F_HIERARCHY, :, :] /= np.float32(HIERARCHY_SCALE)
    return f_tensor


def pixel_centres(resolution: int) -> np.ndarray:
    """Canvas-unit coordinates of the pixel centres along one axis."""
    return (np.arange(resolution) + 0.5) / resolution


def render_layout(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 (3, R, R), structure uint8 (4, R, R)) of `layout` drawn at R = its resolution."""
    resolution = layout.resolution
    centres = pixel_centres(resolution)
    inside = shape_coverage(layout.design, centres, centres)
    palette_ids = np.array([color_id_of(rgb) for rgb in layout.palette], dtype=np.uint8)
    color_id = np.where(inside, color_id_of(layout.background), COLOR_OUTSIDE).astype(np.uint8)
    text = np.zeros_like(color_id)
    image_mask = np.zeros_like(color_id)
    hierarchy = np.zeros_like(color_id)
    light = np.ones(color_id.shape, dtype=np.float32)

    for panel in layout.panels:
        color_id[shape_coverage(panel, centres, centres) & inside] = palette_ids[panel.color]
    for block in layout.images:
        area = shape_coverage(block.box, centres, centres) & inside
        entries = palette_ids[np.asarray(block.colors)][texture_labels(block, centres, centres)]
        color_id[area] = entries[area]
        image_mask[area] = 1
        hierarchy[area] = round(HIERARCHY["image"] * HIERARCHY_SCALE)
        light[area] = shading(block, centres, centres)[area]
    for line in layout.lines:
        ink = glyph_ink(line.text, line.x, line.top, line.size, line.align, resolution) & inside
        color_id[ink] = palette_ids[line.color]
        text[ink] = 1
        image_mask[ink] = 0
        hierarchy[ink] = round(HIERARCHY[line.role] * HIERARCHY_SCALE)
        light[ink] = 1.0

    picture = np.clip(np.rint(COLOR_ID_RGB[color_id] * light[..., None]), 0, 255).astype(np.uint8)
    structure = np.empty((4, resolution, resolution), dtype=np.uint8)
    structure[F_TEXT], structure[F_IMAGE], structure[F_COLOR], structure[F_HIERARCHY] = (
        text,
        image_mask,
        color_id,
        hierarchy,
    )
    return np.ascontiguousarray(picture.transpose(2, 0, 1)), structure


def color_id_of(rgb: RGB) -> int:
    """The colour ID of a vocabulary colour; a layout colour outside the vocabulary is a bug in its maker."""
    if rgb not in ENTRY_OF_RGB:
        raise ValueError(
            f"layout colour {rgb} is not in the colour vocabulary (snap it: colors.nearest_vocabulary_color)"
        )
    return 1 + ENTRY_OF_RGB[rgb]


def glyph_ink(text: str, x: float, top: float, size: float, align: str, resolution: int) -> np.ndarray:
    """Boolean (R, R) mask of the pixels the font's bilevel glyphs cover."""
    canvas = Image.new("L", (resolution, resolution), 0)
    draw = ImageDraw.Draw(canvas)
    draw.fontmode = "1"  # no anti-aliasing: a pixel is ink or not
    draw.text(
        (x * resolution, top * resolution),
        text,
        fill=255,
        font=font(pixel_size(size, resolution)),
        anchor=ANCHORS[align],
    )
    return np.asarray(canvas) > 0


def design_streams(seed: int, split: str, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(metadata, layout) generators of design `index` of `split`: independent of every other design."""
    if split not in SPLIT_STREAMS:
        raise ValueError(f"split={split!r}; expected one of {list(SPLIT_STREAMS)}")
    meta_seq, layout_seq = np.random.SeedSequence([seed, SPLIT_STREAMS[split], index]).spawn(2)
    return np.random.default_rng(meta_seq), np.random.default_rng(layout_seq)


def render_design(index: int, resolution: int, seed: int = 0, split: str = "train") -> RenderedDesign:
    """Design `index` of `split` under `seed`, drawn at `resolution`: deterministic in all four."""
    meta_rng, layout_rng = design_streams(seed, split, index)
    meta = sample_metadata(meta_rng)
    layout = plan_layout(meta, layout_rng, resolution)
    image, structure = render_layout(layout)
    return RenderedDesign(image, structure, meta, grammar_scores(layout), layout)
