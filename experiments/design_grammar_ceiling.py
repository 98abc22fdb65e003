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

Would a score defined on the ink itself be read? With `--encoder CKPT` it also scores alignment on the ink
at the render resolution against the guides a reader can see (`visible_alignment`), and prints how far the
abstractor's layout statistics read that from the true F_Tensors and from the encoder's.

    python experiments/design_grammar_ceiling.py --resolution 128 --designs 300 [--encoder CKPT]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamodules.design.grammar import (  # noqa: E402
    ALIGN_TOLERANCE,
    alignment_score,
    edge_alignment,
    element_edges,
    hierarchy_score,
)
from datamodules.design.layout import Layout, TextLine  # noqa: E402
from datamodules.design.render import decode_structure, glyph_ink, render_design  # noqa: E402
from models.design.encoder.reading import encoder_f_tensor, trained_resolution  # noqa: E402
from models.design.nets.layout_statistics import NAMES, layout_statistics  # noqa: E402
from models.design.schema import structure_channels  # noqa: E402
from training.toolkit.stage_checkpoint import load_trained_module  # noqa: E402


def ink_line(line: TextLine, resolution: int) -> TextLine:
    """`line` with its box shrunk to its ink: left-aligned at the ink's left edge, the ink's width and
    height, and the ink's height as its size (the hierarchy score's type size)."""
    ink = glyph_ink(line.text, line.x, line.top, line.size, line.align, resolution)
    columns, rows = np.flatnonzero(ink.any(axis=0)), np.flatnonzero(ink.any(axis=1))
    if not len(columns):
        return line
    left, right = columns[0] / resolution, (columns[-1] + 1) / resolution
    return replace(line, x=left, width=right - left, align="left", size=float(rows[-1] - rows[0] + 1))


def ink_layout(layout: Layout, resolution: int | None = None) -> Layout:
    """`layout` with every line measured by its ink at `resolution` (default: the layout's)."""
    resolution = resolution or layout.resolution
    return replace(layout, lines=tuple(ink_line(line, resolution) for line in layout.lines))


def ink_scores(layout: Layout, resolution: int | None = None) -> tuple[float, float]:
    """(alignment, hierarchy) of `layout` as its ink shows them at `resolution` (default: the layout's)."""
    seen = ink_layout(layout, resolution)
    return alignment_score(seen), hierarchy_score(seen)


def visible_alignment(layout: Layout) -> float:
    """The alignment score of the ink at the layout's resolution against the guides a reader can see (the
    leftmost left edge, the format's centre, the rightmost right edge): a score defined on what F_Tensors show."""
    edges = element_edges(ink_layout(layout))
    x0, _, x1, _ = layout.design
    return edge_alignment(edges, np.array([edges[:, 0].min(), (x0 + x1) / 2, edges[:, 2].max()]), x1 - x0)


def statistics_alignment(f_tensors: torch.Tensor) -> np.ndarray:
    """The abstractor's layout statistics' own alignment reading at the grammar's tolerance: (designs,)."""
    column = NAMES.index(f"alignment_{ALIGN_TOLERANCE}")
    return layout_statistics(structure_channels(f_tensors))[:, column].numpy()


def encoder_reading(designs: list, checkpoint: str, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """`statistics_alignment` of `designs` on their true F_Tensors and on the encoder's reading of their pictures."""
    encoder = load_trained_module(checkpoint, "--encoder")
    true, encoded = [], []
    with torch.no_grad():
        for start in range(0, len(designs), chunk):
            part = designs[start : start + chunk]
            true.append(torch.from_numpy(np.stack([decode_structure(d.structure) for d in part])))
            pictures = torch.from_numpy(np.stack([d.image for d in part])).float() / 127.5 - 1.0
            encoded.append(encoder_f_tensor(encoder, pictures, trained_resolution(checkpoint)))
    return statistics_alignment(torch.cat(true)), statistics_alignment(torch.cat(encoded))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--designs", type=int, default=300)
    parser.add_argument(
        "--reference", type=int, default=1024, help="the resolution where pixels lose nothing"
    )
    parser.add_argument(
        "--encoder",
        help="a design_encoder checkpoint: also read an alignment defined on the visible ink from its F_Tensors",
    )
    args = parser.parse_args()
    true, seen, fine, designs = [], [], [], []
    for index in range(args.designs):
        design = render_design(index, args.resolution, split="test")
        designs.append(design)
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

    if args.encoder:
        print_encoder_reading(designs, args.encoder)


def print_encoder_reading(designs: list, checkpoint: str) -> None:
    """How well the statistics read `visible_alignment` from true and from the encoder's F_Tensors."""
    visible = np.array([visible_alignment(design.layout) for design in designs])
    true, encoded = encoder_reading(designs, checkpoint)
    constant = np.abs(visible - np.median(visible)).mean()
    print(
        f"alignment defined on the visible ink (mean {visible.mean():.3f}, sd {visible.std():.3f}; a constant, "
        f"the median, has MAE {constant:.3f}): the layout statistics read it from true F_Tensors with MAE "
        f"{np.abs(true - visible).mean():.3f}, from the encoder's with {np.abs(encoded - visible).mean():.3f}"
    )


if __name__ == "__main__":
    main()
