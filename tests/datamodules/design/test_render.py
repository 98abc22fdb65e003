"""The renderer: deterministic by (seed, split, index, resolution), and its F_Tensor matches the picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import ImageFont

from datamodules.design.colors import CONTRAST_BANDS, make_palette, nearest_vocabulary_color
from datamodules.design.layout import Panel, design_box
from datamodules.design.planner import GOAL_STYLES
from datamodules.design.render import color_id_of, decode_structure, glyph_ink, render_design, render_layout
from datamodules.design.typography import text_width
from models.design.color_science import color_with_luminance, contrast_ratio
from models.design.color_vocabulary import ENTRIES, ENTRY_OF_RGB, LEVEL_LUMINANCE
from models.design.schema import (
    COLOR_ID_RGB,
    COLOR_OUTSIDE,
    F_COLOR,
    F_HIERARCHY,
    F_IMAGE,
    F_TEXT,
    FORMATS,
    HIERARCHY,
)
from tests.datamodules.design.layouts import BLACK, VIVID, WHITE, image, layout, line

DESIGNS = [render_design(i, 64, seed=3) for i in range(12)]


def test_same_seed_and_index_give_identical_bytes_and_others_differ() -> None:
    again = render_design(4, 64, seed=3)
    assert again.image.tobytes() == DESIGNS[4].image.tobytes()
    assert again.structure.tobytes() == DESIGNS[4].structure.tobytes()
    assert np.array_equal(again.grammar, DESIGNS[4].grammar)
    assert again.image.tobytes() != DESIGNS[5].image.tobytes()
    assert render_design(4, 64, seed=4).image.tobytes() != again.image.tobytes()
    assert render_design(4, 64, seed=3, split="val").image.tobytes() != again.image.tobytes()
    assert again.image.shape == (3, 64, 64) and again.image.dtype == np.uint8
    assert again.structure.shape == (4, 64, 64) and again.structure.dtype == np.uint8


def test_every_pixel_is_its_colour_ids_vocabulary_colour() -> None:
    """Outside image blocks the picture is exactly the vocabulary colour of its ID; inside, only the shading
    differs. The IDs are the layout's colours: background, and palette entries."""
    for design in DESIGNS:
        expected = COLOR_ID_RGB[design.structure[F_COLOR]].astype(np.int64).transpose(2, 0, 1)
        error = np.abs(design.image.astype(np.int64) - expected)
        in_image = design.structure[F_IMAGE].astype(bool)
        assert error[:, ~in_image].max() == 0
        shading = max((block.shading for block in design.layout.images), default=0.0)
        assert error[:, in_image].max(initial=0) <= shading * 255 + 1
        layout_ids = {COLOR_OUTSIDE, color_id_of(design.layout.background)}
        layout_ids |= {color_id_of(rgb) for rgb in design.layout.palette}
        assert set(np.unique(design.structure[F_COLOR]).tolist()) <= layout_ids


def test_text_mask_is_the_glyph_ink_in_the_text_colour() -> None:
    lines = [line("headline", 0.1, 0.1, 16, text="Hello"), line("body", 0.1, 0.5, 8, text="world wide")]
    picture, structure = render_layout(layout(lines, background=WHITE, text_color=BLACK))
    ink = (picture == 0).all(axis=0)
    assert np.array_equal(structure[F_TEXT].astype(bool), ink)
    boxes = sum(round(b.width * 64) * round(b.height * 64) for b in lines)
    assert 0.1 * boxes < ink.sum() < 0.6 * boxes  # glyph ink, not the bounding boxes
    # the headline's ink is the bilevel glyph bitmap Pillow draws at that size
    mask = ImageFont.load_default(size=16).getmask2("Hello", mode="1", anchor="la")[0]
    assert ink[:32].sum() == np.array(mask).astype(bool).sum()


def test_image_mask_is_the_image_block_area_and_hierarchy_ranks_the_elements() -> None:
    lines = [line("headline", 0.05, 0.0, 12), line("subhead", 0.05, 0.27, 9), line("body", 0.05, 0.47, 6)]
    _, structure = render_layout(layout(lines, images=[image((0.25, 0.62, 0.75, 0.95))]))
    block = np.zeros((64, 64), dtype=bool)
    block[40:61, 16:48] = True  # the pixels whose centres lie inside the box
    assert np.array_equal(structure[F_IMAGE].astype(bool), block)
    f_tensor = decode_structure(structure)
    hierarchy = f_tensor[F_HIERARCHY]
    assert set(np.unique(hierarchy).tolist()) <= {np.float32(v) for v in HIERARCHY.values()}
    assert (hierarchy[block] == np.float32(HIERARCHY["image"])).all()
    for text_line in lines:
        top, bottom = round(text_line.box[1] * 64), round(text_line.box[3] * 64)
        ink = structure[F_TEXT, top:bottom].astype(bool)
        assert ink.any()
        assert (hierarchy[top:bottom][ink] == np.float32(HIERARCHY[text_line.role])).all()
    assert (hierarchy[(structure[F_TEXT] == 0) & ~block] == 0).all()
    levels = [HIERARCHY[k] for k in ("headline", "subhead", "image", "body", "background")]
    assert levels == sorted(levels, reverse=True)


def test_letterbox_is_outside_and_panels_take_their_colour_id() -> None:
    banner = design_box(FORMATS["banner"])  # 3:1: rows 21.3 .. 42.7 of 64
    panel = Panel((0.0, 0.4, 0.5, 0.6), "rect", color=3)
    _, structure = render_layout(layout([], panels=[panel], design=banner))
    color_id = structure[F_COLOR]
    assert (color_id[:21] == COLOR_OUTSIDE).all() and (color_id[43:] == COLOR_OUTSIDE).all()
    assert (color_id[26:38, :32] == 1 + ENTRY_OF_RGB[VIVID[2]]).all()  # palette entry 3
    assert (color_id[22:43, 32:] == 1 + ENTRY_OF_RGB[WHITE]).all()  # the background is its colour


def test_palettes_are_vocabulary_colours_in_their_contrast_bands() -> None:
    rng = np.random.default_rng(0)
    for dark in (False, True):
        for _ in range(20):
            background, palette = make_palette(rng, rng.uniform(), rng.uniform(), dark, 0.3)
            assert background in ENTRY_OF_RGB and all(color in ENTRY_OF_RGB for color in palette)
            for color, (low, high) in zip(palette, CONTRAST_BANDS, strict=True):
                assert low <= contrast_ratio(color, background) <= high


@pytest.mark.parametrize("saturation", [0.5, 0.85])
def test_goal_hues_snap_to_distinct_vocabulary_hues(saturation: float) -> None:
    for level in range(2, 7):
        hues = [
            ENTRIES[
                ENTRY_OF_RGB[nearest_vocabulary_color(color_with_luminance(style.hue, saturation, luminance))]
            ][0]
            for style in GOAL_STYLES.values()
            for luminance in [LEVEL_LUMINANCE[level]]
        ]
        assert None not in hues and len(set(hues)) == len(GOAL_STYLES)


@pytest.mark.parametrize("size_px", [3, 7, 8, 10, 21])
def test_text_width_is_the_advance_of_the_bilevel_glyphs_the_renderer_draws(size_px: int) -> None:
    """Bilevel glyphs have their own hinting: at 7 px "for market" advances 42 px drawn bilevel, 30 px
    antialiased. The layout must measure what is drawn, or boxes (and the grammar) miss the ink."""
    font = ImageFont.load_default(size=size_px)
    for text in ("Hello world", "SALE 50% OFF", "with friends", "for market"):
        assert text_width(text, size_px / 128, 128) * 128 == font.getlength(text, mode="1")
        ink = glyph_ink(text, 2 / 256, 0.25, size_px / 256, "left", 256)  # a canvas wide enough for it all
        columns = np.flatnonzero(ink.any(axis=0))
        assert abs((columns[-1] + 1 - 2) - text_width(text, size_px / 256, 256) * 256) <= 2  # within 2 px


def test_grammar_scores_spread_over_the_data() -> None:
    """Deliberately sloppy designs: every score takes low and perfect values across designs."""
    grammar = np.stack([render_design(i, 64, seed=1).grammar for i in range(40)])
    assert ((grammar >= 0) & (grammar <= 1)).all()
    assert (grammar.std(axis=0) > 0.1).all()
    assert (grammar.min(axis=0) < 0.5).all() and (grammar.max(axis=0) > 0.9).all()
