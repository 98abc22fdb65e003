"""experiments/design_grammar_ceiling.py: a line is re-measured by its glyph ink; the script prints both MAEs,
and with an encoder how an alignment defined on the visible ink is read from its F_Tensors."""

import sys
from unittest import mock

import numpy as np
import pytest
import torch

from datamodules.design.render import decode_structure, glyph_ink, render_design
from tests.helpers import load_script
from tests.models.design.stage_checkpoints import tiny_encoder_config, write_checkpoint

ceiling = load_script("experiments/design_grammar_ceiling.py")


def test_a_line_is_remeasured_by_the_extent_and_height_of_its_ink() -> None:
    layout = render_design(0, 128, split="test").layout
    for line in layout.lines:
        ink = glyph_ink(line.text, line.x, line.top, line.size, line.align, 128)
        columns, rows = np.flatnonzero(ink.any(axis=0)), np.flatnonzero(ink.any(axis=1))
        measured = ceiling.ink_line(line, 128)
        assert measured.box[0] == pytest.approx(columns[0] / 128)
        assert measured.box[2] == pytest.approx((columns[-1] + 1) / 128)
        assert measured.size == rows[-1] - rows[0] + 1
        assert (measured.role, measured.top) == (line.role, line.top)


def test_the_ink_at_the_layouts_own_resolution_is_the_default_reading() -> None:
    layout = render_design(1, 64, split="test").layout
    assert ceiling.ink_scores(layout) == ceiling.ink_scores(layout, 64)
    assert ceiling.ink_scores(layout, 512) != ceiling.ink_scores(layout, 64)  # finer pixels, other edges


def test_the_script_prints_the_errors_and_their_two_parts(capsys) -> None:
    argv = ["design_grammar_ceiling.py", "--resolution", "64", "--designs", "3", "--reference", "256"]
    with mock.patch.object(sys, "argv", argv):
        ceiling.main()
    out = capsys.readouterr().out
    assert "alignment MAE 0." in out and "a constant, the median, has 0." in out
    assert "the ink at 256² vs the layout (no resolution shows it): alignment 0." in out
    assert "the ink at 64² vs at 256² (what the pixels lose): alignment 0." in out


def test_the_statistics_read_the_visible_ink_alignment_but_not_the_layouts() -> None:
    """An alignment defined on the ink at the render resolution, against the guides a reader can see, is
    what the layout statistics measure: they read it nearly exactly, the layout's own score far less so."""
    designs = [render_design(index, 128, split="test") for index in range(24)]
    visible = np.array([ceiling.visible_alignment(design.layout) for design in designs])
    layout_score = np.array([design.grammar[0] for design in designs])
    structures = torch.from_numpy(np.stack([decode_structure(design.structure) for design in designs]))
    read = ceiling.statistics_alignment(structures)
    assert np.abs(read - visible).mean() < 0.04
    assert np.abs(read - layout_score).mean() > 2 * np.abs(read - visible).mean()


def test_with_an_encoder_the_script_also_prints_its_reading(tmp_path, capsys) -> None:
    checkpoint = write_checkpoint(tmp_path / "encoder.ckpt", tiny_encoder_config(), seed=0)
    argv = ["design_grammar_ceiling.py", "--resolution", "64", "--designs", "3", "--reference", "128"]
    with mock.patch.object(sys, "argv", [*argv, "--encoder", str(checkpoint)]):
        ceiling.main()
    out = capsys.readouterr().out
    assert "alignment defined on the visible ink" in out and "from the encoder's with 0." in out
