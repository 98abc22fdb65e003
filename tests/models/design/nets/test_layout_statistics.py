"""Layout statistics read a drawn structure's geometry, type and hues exactly, soft or hard."""

from __future__ import annotations

import math

import pytest
import torch

from datamodules.design.render import decode_structure, render_design
from models.design.color_vocabulary import ENTRIES, ENTRY_OF_RGB
from models.design.nets.colour_statistics import BAND_OF_STEP
from models.design.nets.layout_statistics import COUNT, NAMES, layout_statistics
from models.design.schema import F_CHANNELS, F_COLOR, STRUCTURE_CHANNELS, structure_channels

SIDE = 64
TOP, BOTTOM = 8, 56  # letterbox: the design is rows 8..55, all 64 columns


def _structure() -> torch.Tensor:
    """Two left-aligned headline lines, one body line, a red image block and a grey band on a light page."""
    s = torch.zeros(1, STRUCTURE_CHANNELS, SIDE, SIDE)
    s[0, 7, :TOP] = s[0, 7, BOTTOM:] = 1.0  # outside flag
    s[0, 3, TOP:BOTTOM] = 0.9  # page lightness
    s[0, 3, 52:BOTTOM] = 0.5  # a darker band across the foot
    for rows, cols, level in ((slice(10, 14), slice(8, 41), 1.0), (slice(16, 20), slice(8, 31), 1.0)):
        s[0, 0, rows, cols], s[0, 2, rows, cols], s[0, 3, rows, cols] = 1.0, level, 0.1
    s[0, 0, 30:32, 8:51], s[0, 2, 30:32, 8:51] = 1.0, 0.4
    s[0, 1, 40:51, 20:45], s[0, 2, 40:51, 20:45], s[0, 4, 40:51, 20:45] = 1.0, 0.6, 0.5
    return s


def _read(structure: torch.Tensor) -> dict[str, float]:
    return dict(zip(NAMES, layout_statistics(structure)[0].tolist(), strict=True))


def test_geometry_type_and_hue_of_a_drawn_structure() -> None:
    stats = _read(_structure())
    px = 1 / SIDE  # one pixel as a fraction of the design's width
    assert len(NAMES) == COUNT
    assert stats["aspect"] == pytest.approx(SIDE / (BOTTOM - TOP))
    assert stats["headline_lines"] == 2 and stats["body_lines"] == 1 and stats["subhead_lines"] == 0
    assert stats["headline_line_height"] == pytest.approx(4 / SIDE)
    assert stats["headline_left"] == pytest.approx(8.5 * px)
    assert stats["headline_left_std"] == pytest.approx(0.0, abs=1e-6)
    assert stats["headline_right_std"] == pytest.approx(5 * px)  # right edges at 40.5 and 30.5 px
    assert stats["headline_width"] == pytest.approx(32 * px)
    assert stats["image_coverage"] == pytest.approx(11 * 25 / ((BOTTOM - TOP) * SIDE))
    assert stats["image_x"] == pytest.approx(32.5 * px)
    assert stats["image_y"] == pytest.approx((45.5 - TOP) / (BOTTOM - TOP))
    assert stats["headline_L"] == pytest.approx(0.1, rel=1e-5) and stats["page_L"] == pytest.approx(
        0.9, rel=1e-5
    )
    # the image is pure +a* (hue angle 0): all of its chroma-weighted share in one sector
    hues = [stats[f"image_hue{k}"] for k in range(12)]
    assert hues[6] == pytest.approx(1.0) and sum(hues) == pytest.approx(1.0)
    assert stats["page_chroma"] == 0.0 and stats["image_texture"] == 0.0
    assert stats["background_L"] == pytest.approx(0.9)
    # the band is the only panel: full width, rows 52..55
    assert stats["panel_coverage"] == pytest.approx(4 / (BOTTOM - TOP))
    assert stats["panel_spread_x"] == pytest.approx(SIDE / math.sqrt(12) * px, rel=1e-3)
    assert stats["panel_L"] == pytest.approx(0.5)
    assert (stats["content_left"], stats["content_right"]) == pytest.approx((8.5 * px, 50.5 * px))
    # the band lies in the bottom strip; its two ends (6 columns each) in the corners
    assert stats["panel_bottom"] == pytest.approx(1 / 12) and stats["panel_top"] == 0.0
    assert stats["panel_corners"] == pytest.approx(2 * 6 * 4 / ((BOTTOM - TOP) * SIDE))
    assert stats["hue_dispersion"] == pytest.approx(0.0, abs=1e-6)  # one hue (the image's) on the page
    # the narrowest gap from content to an edge: the first headline row, 2.5 px below the letterbox
    assert stats["margin"] == pytest.approx(2.5 / (BOTTOM - TOP))
    # headline rows 4 px high against the widest line (the body's, 42 px); no subhead: ratios 0
    assert stats["headline_to_column"] == pytest.approx(4 / 42, rel=1e-5)
    assert stats["headline_to_subhead"] == 0.0 and stats["subhead_to_body"] == 0.0
    # every text line shares its left edge; the image's centre is 0.5 px off the page's centre line
    image_off = math.exp(-(0.5 * px) / 0.01)
    assert stats["alignment_0.01"] == pytest.approx((3 + image_off) / 4, rel=1e-5)


def test_soft_masks_read_like_hard_ones() -> None:
    """The encoder's soft text/image masks (confident, not 0/1) give the same statistics."""
    hard = _structure()
    soft = hard.clone()
    soft[:, :2] = hard[:, :2] * 0.8 + 0.1
    torch.testing.assert_close(layout_statistics(soft), layout_statistics(hard))


def test_rendered_designs_give_finite_statistics_without_gradient() -> None:
    f_tensors = torch.stack(
        [torch.from_numpy(decode_structure(render_design(i, 64).structure)) for i in range(4)]
    )
    structure = structure_channels(f_tensors).requires_grad_(True)
    stats = layout_statistics(structure)
    assert stats.shape == (4, COUNT) and torch.isfinite(stats).all()
    assert not stats.requires_grad


def test_mixed_precision_reads_in_float32() -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stats = layout_statistics(_structure())
    assert stats.dtype == torch.float32
    torch.testing.assert_close(stats, layout_statistics(_structure()))


def _page(side: int = SIDE) -> torch.Tensor:
    """A full-canvas light page with nothing on it."""
    s = torch.zeros(1, STRUCTURE_CHANNELS, side, side)
    s[0, 3] = 0.9
    return s


def test_margins_and_frame_read_in_short_sides() -> None:
    """A frame 3 px in from every edge, 2 px thick (where the planner's frames sit: 0.35 margin in, 0.12
    margin thick), around a text block at rows 20..29, columns 12..39."""
    s = _page()
    s[0, 3, 3:61, 3:61] = 0.4
    s[0, 3, 5:59, 5:59] = 0.9  # the frame's hole
    s[0, 0, 20:30, 12:40], s[0, 2, 20:30, 12:40], s[0, 3, 20:30, 12:40] = 1.0, 0.4, 0.1
    stats = _read(s)
    # gaps to the nearest pixel centre: 12 px, 64 - 39.5, 20 px and 64 - 29.5, over a 64 px short side
    expected = (12.5 / SIDE, 24.5 / SIDE, 20.5 / SIDE, 34.5 / SIDE)
    for side, gap in zip(("left", "right", "top", "bottom"), expected, strict=True):
        assert stats[f"text_gap_{side}"] == pytest.approx(gap) and stats[
            f"content_gap_{side}"
        ] == pytest.approx(gap)
        assert stats[f"{side}_panel_inset"] == pytest.approx(3.5 / SIDE)  # first frame pixel's centre
        assert stats[f"{side}_panel_thickness"] == pytest.approx(2 / SIDE)
        assert stats[f"{side}_panel_lines"] == 1.0
    assert stats["margin"] == pytest.approx(12.5 / SIDE)


def test_a_page_without_panels_reads_no_inset() -> None:
    stats = _read(_page())
    assert all(stats[f"{side}_panel_inset"] == -1.0 for side in ("left", "right", "top", "bottom"))
    assert stats["left_panel_lines"] == 0.0 and stats["palette_colours"] == 1.0


def test_palette_counts_each_colour_once() -> None:
    """A big +a* panel and a small +b* text line weigh the same in the palette's hues, unlike by area."""
    s = _page()
    s[0, 4, 0:40, :] = 0.5  # +a* (hue angle 0): 40 rows
    s[0, 0, 50:52, 8:40], s[0, 2, 50:52, 8:40], s[0, 5, 50:52, 8:40] = 1.0, 1.0, 0.5  # +b* (90°): 2 rows
    stats = _read(s)
    hues = [stats[f"palette_hue{k}"] for k in range(12)]
    assert hues[6] == pytest.approx(0.5) and hues[9] == pytest.approx(0.5)
    assert (stats["palette_hue_cos"], stats["palette_hue_sin"]) == pytest.approx((0.5, 0.5))
    assert stats["palette_hue_dispersion"] == pytest.approx(1 - math.sqrt(0.5))
    assert stats["palette_colours"] == 3.0 and stats["palette_chromatic"] == 2.0
    assert stats["palette_chroma_max"] == pytest.approx(0.5)


def test_texture_reads_stripe_direction_and_period() -> None:
    """Vertical stripes 2 px wide (period 4) over the image: colour changes along x only, at odd lags."""
    s = _page()
    s[0, 1, 16:48, 16:48] = 1.0
    stripes = (torch.arange(SIDE) // 2 % 2).float()
    s[0, 4, 16:48, 16:48] = (0.2 + 0.3 * stripes)[None, 16:48]
    stats = _read(s)
    # lag 1: 15 stripe edges among a row's 31 neighbour pairs; lag 2 always crosses one, lags 4 and 8 never
    assert [stats[f"texture_change_x{lag}"] for lag in (1, 2, 4, 8)] == pytest.approx(
        [15 / 31, 1.0, 0.0, 0.0]
    )
    assert [stats[f"texture_change_y{lag}"] for lag in (1, 2, 4, 8)] == [0.0] * 4
    assert stats["texture_colours"] == 2.0 and stats["texture_largest_share"] == pytest.approx(0.5)


def _entry(hue: float | None, saturation: float, level: int) -> int:
    return ENTRIES.index((hue, saturation, level))


def test_colours_are_named_by_their_vocabulary_entry_against_the_background() -> None:
    """A medium-saturation page at level 1 with vivid text six levels darker (band 0) at a hue 2/12 away
    and a grey panel two levels darker (band 3): saturation tiers, levels and hue offsets as drawn."""
    page, text, panel = _entry(7 / 12, 0.5, 1), _entry(9 / 12, 0.85, 7), _entry(None, 0.0, 3)
    f_tensor = torch.zeros(1, F_CHANNELS, SIDE, SIDE)
    f_tensor[0, F_COLOR] = 1 + page
    f_tensor[0, F_COLOR, 40:50] = 1 + panel
    f_tensor[0, 0, 10:20, 8:40], f_tensor[0, F_COLOR, 10:20, 8:40] = 1.0, 1 + text
    stats = _read(structure_channels(f_tensor))
    assert stats["background_saturation"] == pytest.approx(0.5) and stats["background_level"] == 1.0
    assert stats["saturation_mean"] == pytest.approx((0.85 + 0.0) / 2) and stats[
        "saturation_max"
    ] == pytest.approx(0.85)
    assert [stats[f"saturation_share{k}"] for k in range(4)] == pytest.approx([0.5, 0.0, 0.0, 0.5])
    # band 0 (contrast 7-11: 6 level steps from the page): the text
    assert (stats["band0_present"], stats["band0_saturation"], stats["band0_level"]) == pytest.approx(
        (1.0, 0.85, 7.0)
    )
    assert stats["band0_hue_offset"] == pytest.approx(2 / 12)
    # band 3 (contrast 1.8-3: 2 steps): the grey panel, which has no hue
    assert (stats["band3_present"], stats["band3_saturation"], stats["band3_level"]) == pytest.approx(
        (1.0, 0.0, 3.0)
    )
    assert stats["band3_hue_offset"] == -1.0
    assert all(stats[f"band{k}_present"] == 0.0 and stats[f"band{k}_level"] == -1.0 for k in (1, 2, 4))
    assert stats["hue_offset_mean"] == pytest.approx(2 / 12) and stats["hue_offset_max"] == pytest.approx(
        2 / 12
    )
    assert stats["hue_range"] == -1.0  # one chromatic colour besides the page


def test_the_contrast_band_of_a_level_step_is_the_palette_entry_the_renderer_drew_there() -> None:
    for index in range(20):
        layout = render_design(index, 64).layout
        page_level = ENTRIES[ENTRY_OF_RGB[layout.background]][2]
        for k, colour in enumerate(layout.palette):
            assert BAND_OF_STEP[abs(ENTRIES[ENTRY_OF_RGB[colour]][2] - page_level)] == k
