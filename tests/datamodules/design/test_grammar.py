"""V_Grammar scores: known values on hand-built layouts, and each moves the right way with its flaw."""

from __future__ import annotations

import math

import pytest

from datamodules.design.grammar import alignment_score, balance_score, contrast_score, hierarchy_score
from models.design.color_science import contrast_ratio
from tests.datamodules.design.layouts import BLACK, GREY, LIGHT_GREY, WHITE, image, layout, line


def _column(xs: list[float], align: str = "left") -> list:
    return [line("body", x, 0.2 + 0.1 * i, 8, align) for i, x in enumerate(xs)]


def test_alignment_is_one_when_edges_line_up_and_falls_with_jitter() -> None:
    aligned = alignment_score(layout(_column([0.1, 0.1, 0.1])))  # on the left margin guide
    centred = alignment_score(layout(_column([0.5, 0.5, 0.5], align="centre")))
    slightly = alignment_score(layout(_column([0.12, 0.135, 0.15])))
    jittered = alignment_score(layout(_column([0.13, 0.21, 0.3])))
    assert aligned == 1.0 and centred == 1.0
    assert 1.0 > slightly > jittered
    assert jittered < 0.2


def test_alignment_of_two_lines_one_percent_apart_is_exp_minus_one() -> None:
    two = layout(_column([0.2, 0.21]), margin=0.0)  # guides at 0, 0.5, 1: far from every edge
    for text_line in two.lines:
        left, _, right, _ = text_line.box
        assert min(left, 1.0 - right, abs((left + right) / 2 - 0.5)) > 0.05
    assert alignment_score(two) == pytest.approx(math.exp(-1.0))


def test_contrast_black_on_white_is_one_and_grey_on_grey_is_low() -> None:
    lines = _column([0.1, 0.1])
    assert contrast_score(layout(lines, background=WHITE, text_color=BLACK)) == 1.0
    grey = contrast_score(layout(lines, background=LIGHT_GREY, text_color=GREY))
    assert grey == pytest.approx(math.log(contrast_ratio(GREY, LIGHT_GREY)) / math.log(7.0))
    assert grey < 0.2
    assert contrast_score(layout(lines, background=GREY, text_color=GREY)) == 0.0


def test_balance_is_one_when_centred_and_zero_in_a_corner() -> None:
    assert balance_score(layout([], images=[image((0.3, 0.3, 0.7, 0.7))])) == 1.0
    assert balance_score(layout([], images=[image((0.02, 0.02, 0.3, 0.3))])) == 0.0
    # centroid (0.6, 0.6) on the sampling grid: 1 - |(0.1, 0.1)| / 0.3
    off_centre = balance_score(layout([], images=[image((0.5, 0.5, 0.7, 0.7))]))
    assert off_centre == pytest.approx(1 - math.hypot(0.1, 0.1) / 0.3, abs=0.02)


def test_hierarchy_rewards_clear_size_steps_and_whitespace() -> None:
    clear = [line("headline", 0.1, 0.1, 24), line("subhead", 0.1, 0.4, 14), line("body", 0.1, 0.6, 8)]
    equal = [line("headline", 0.1, 0.1, 10), line("subhead", 0.1, 0.4, 10), line("body", 0.1, 0.6, 10)]
    inverted = [line("headline", 0.1, 0.1, 8), line("body", 0.1, 0.6, 12)]
    assert hierarchy_score(layout(clear)) == 1.0  # steps 1.71 and 1.75 (>= 1.5), page mostly empty
    assert hierarchy_score(layout(equal)) == 0.25  # no size steps; whitespace alone
    assert hierarchy_score(layout(inverted)) == 0.25
    crowded = layout(clear, images=[image((0.0, 0.0, 1.0, 1.0))])  # nothing left blank
    assert hierarchy_score(crowded) == 0.75


def test_a_page_without_text_has_no_contrast_and_without_elements_no_alignment() -> None:
    assert contrast_score(layout([], images=[image((0.2, 0.2, 0.6, 0.6))])) == 0.0
    assert alignment_score(layout([])) == 0.0
