"""How well the F_Tensor can tell two grammar scores at all: alignment and hierarchy read from the glyph ink.

The analytic scores (`datamodules/design/grammar.py`) are defined on each text line's typographic box
(advance width, font size); the F_Tensor shows only the ink, whose edges differ by the glyphs' side
bearings and pixel quantisation. This scores each design again with every line's box replaced by its
ink's extent (alignment) and its size by its ink's height (hierarchy), at the render resolution, and
prints the mean absolute difference from the true scores: what a reader that measured the ink exactly
would still get wrong. An abstractor reading F_Tensors cannot be expected to do much better.

That error has two parts, which it also prints: what the ink cannot show at any resolution (the side
bearings; the ink read at `--reference`, 1024² by default, against the layout) and what the pixels lose
(the ink at the resolution against the ink at the reference): a score defined on the ink would keep
only the second.

    python experiments/design_grammar_ceiling.py --resolution 128 --designs 300
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamodules.design.grammar import alignment_score, hierarchy_score  # noqa: E402
from datamodules.design.layout import Layout, TextLine  # noqa: E402
from datamodules.design.render import glyph_ink, render_design  # noqa: E402


def ink_line(line: TextLine, resolution: int) -> TextLine:
    """`line` with its box shrunk to its ink: left-aligned at the ink's left edge, the ink's width and
    height, and the ink's height as its size (the hierarchy score's type size)."""
    ink = glyph_ink(line.text, line.x, line.top, line.size, line.align, resolution)
    columns, rows = np.flatnonzero(ink.any(axis=0)), np.flatnonzero(ink.any(axis=1))
    if not len(columns):
        return line
    left, right = columns[0] / resolution, (columns[-1] + 1) / resolution
    return replace(line, x=left, width=right - left, align="left", size=float(rows[-1] - rows[0] + 1))


def ink_scores(layout: Layout, resolution: int | None = None) -> tuple[float, float]:
    """(alignment, hierarchy) of `layout` as its ink shows them at `resolution` (default: the layout's)."""
    resolution = resolution or layout.resolution
    seen = replace(layout, lines=tuple(ink_line(line, resolution) for line in layout.lines))
    return alignment_score(seen), hierarchy_score(seen)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--designs", type=int, default=300)
    parser.add_argument(
        "--reference", type=int, default=1024, help="the resolution where pixels lose nothing"
    )
    args = parser.parse_args()
    true, seen, fine = [], [], []
    for index in range(args.designs):
        design = render_design(index, args.resolution, split="test")
        true.append(design.grammar[[0, 3]])
        seen.append(ink_scores(design.layout))
        fine.append(ink_scores(design.layout, args.reference))
    true, seen, fine = np.array(true), np.array(seen), np.array(fine)
    error, bearings, pixels = (
        np.abs(a - b).mean(axis=0) for a, b in ((seen, true), (fine, true), (seen, fine))
    )
    print(
        f"{args.designs} test designs at {args.resolution}²: scores read from the glyph ink vs the layout's"
    )
    constant = np.abs(true - np.median(true, axis=0)).mean(axis=0)
    print(
        f"alignment MAE {error[0]:.3f}, hierarchy MAE {error[1]:.3f} (target for the abstractor: < 0.10; "
        f"a constant, the median, has {constant[0]:.3f} and {constant[1]:.3f})"
    )
    print(
        f"of which the ink at {args.reference}² vs the layout (no resolution shows it): alignment "
        f"{bearings[0]:.3f}, hierarchy {bearings[1]:.3f}; the ink at {args.resolution}² vs at {args.reference}² "
        f"(what the pixels lose): alignment {pixels[0]:.3f}, hierarchy {pixels[1]:.3f}"
    )


if __name__ == "__main__":
    main()
