"""Reading a Layout back from an F_Tensor: the boxes, colours and roles a rendered layout's structure shows,
and, over rendered designs, analytic grammar close to the scores the layouts were labelled with."""

from __future__ import annotations

import numpy as np
import pytest

from datamodules.design.grammar import contrast_score
from datamodules.design.layout import Panel
from datamodules.design.layout_reading import read_grammar, read_layout
from datamodules.design.render import decode_structure, render_design, render_layout
from models.design.schema import F_CHANNELS
from tests.datamodules.design.layouts import BLACK, RESOLUTION, WHITE, image, layout, line

PIXEL = 1 / RESOLUTION
POSTER = (0.125, 0.0, 0.875, 1.0)


def read_back(drawn):
    return read_layout(decode_structure(render_layout(drawn)[1]))


@pytest.fixture(scope="module")
def drawn():
    return layout(
        [line("headline", 0.2, 0.1, 12, text="HELLO"), line("body", 0.2, 0.35, 6, text="HELLO")],
        images=[image((0.2, 0.55, 0.6, 0.85))],
        panels=[Panel((0.7, 0.55, 0.8, 0.95), "rect", 1)],
        design=POSTER,
    )


def test_the_format_image_and_panel_boxes_come_back_to_the_pixel(drawn):
    read = read_back(drawn)
    assert read.design == pytest.approx(POSTER, abs=PIXEL)
    assert [block.box for block in read.images] == [pytest.approx(drawn.images[0].box, abs=PIXEL)]
    assert [(panel.box, panel.shape) for panel in read.panels] == [
        (pytest.approx(drawn.panels[0].box, abs=PIXEL), "rect")
    ]
    assert read.palette[read.panels[0].color] == drawn.palette[1]


def test_each_text_line_comes_back_with_its_role_colour_and_ink_extent(drawn):
    read = read_back(drawn)
    assert [text.role for text in read.lines] == ["headline", "body"]
    assert read.background == WHITE and {read.palette[text.color] for text in read.lines} == {BLACK}
    for text, truth in zip(read.lines, drawn.lines, strict=True):
        left, top, right, bottom = text.box
        assert (
            truth.box[0] - PIXEL <= left and right <= truth.box[2] + PIXEL
        )  # ink lies inside the advance box
        assert truth.box[1] <= top and bottom <= truth.box[3] + PIXEL
    sizes = read.role_sizes()
    assert sizes["headline"] / sizes["body"] == pytest.approx(2.0, rel=0.35)  # 12 px over 6 px type
    assert contrast_score(read) == contrast_score(drawn)


def test_a_panel_that_fills_little_of_its_box_is_a_frame():
    frame = Panel((0.2, 0.2, 0.8, 0.8), "frame", 1, thickness=0.05)
    read = read_back(layout([line("headline", 0.3, 0.4, 8)], panels=[frame]))
    assert [panel.shape for panel in read.panels] == ["frame"]
    assert read.panels[0].box == pytest.approx(frame.box, abs=PIXEL)
    assert read.panels[0].thickness == pytest.approx(0.05, abs=PIXEL)


def test_a_tensor_with_no_format_has_no_layout_and_scores_zero():
    outside = np.zeros((F_CHANNELS, 16, 16), dtype=np.float32)
    assert read_layout(outside) is None
    np.testing.assert_array_equal(read_grammar(outside), np.zeros(4, dtype=np.float32))


def test_over_rendered_designs_the_read_grammar_follows_the_labels():
    """What the reading is worth: the measured agreement on 100 test designs at 128² (docs/design.md has the
    numbers). Contrast is read exactly; alignment, balance and hierarchy through ink boxes, which are
    smaller than the type's line boxes, so they agree within about a tenth."""
    designs = [render_design(index, 128, split="test") for index in range(100)]
    truth = np.stack([design.grammar for design in designs])
    read = np.stack([read_grammar(decode_structure(design.structure)) for design in designs])
    mae = np.abs(read - truth).mean(axis=0)
    correlation = [np.corrcoef(read[:, k], truth[:, k])[0, 1] for k in range(4)]
    assert mae.tolist() == pytest.approx([0.13, 0.0, 0.10, 0.10], abs=0.035)
    assert all(c > limit for c, limit in zip(correlation, [0.6, 0.99, 0.8, 0.65], strict=True)), correlation
