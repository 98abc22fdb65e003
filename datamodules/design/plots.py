"""A picture of what the renderer makes: designs beside their F_Tensor channels, metadata and grammar."""

from __future__ import annotations

from pathlib import Path

from datamodules.design.render import decode_structure, render_design
from models.design.schema import COLOR_ID_RGB, F_COLOR, F_HIERARCHY, F_IMAGE, F_TEXT, GRAMMAR_NAMES
from training.toolkit.figures import new_figure

# (title, F_Tensor channel, colour map, value range); colour IDs are shown in their vocabulary colours
PANELS = (
    ("text", F_TEXT, "gray", (0.0, 1.0)),
    ("image", F_IMAGE, "gray", (0.0, 1.0)),
    ("colour ID", F_COLOR, None, (None, None)),
    ("hierarchy", F_HIERARCHY, "magma", (0.0, 1.0)),
)


def plot_samples(
    out: str | Path, num: int = 8, resolution: int = 128, seed: int = 0, split: str = "val"
) -> Path:
    """Save a grid of `num` designs (one per row): the picture, then the four F_Tensor channels.

    The picture's title gives goal, format and tone (E energy, S seriousness); the text and image
    panels' titles the grammar scores (alignment, contrast, balance, hierarchy).
    """
    figure = new_figure(1.8 * (1 + len(PANELS)), 2.0 * num)
    axes = figure.subplots(num, 1 + len(PANELS), squeeze=False)
    for row in range(num):
        design = render_design(row, resolution, seed, split)
        f_tensor = decode_structure(design.structure)
        meta, scores = (
            design.meta,
            [f"{name[:3]} {value:.2f}" for name, value in zip(GRAMMAR_NAMES, design.grammar, strict=True)],
        )
        subtitles = [
            f"E {meta.tone[0]:.2f} S {meta.tone[1]:.2f}",
            " ".join(scores[:2]),
            " ".join(scores[2:]),
            "",
            "",
        ]
        axes[row, 0].imshow(design.image.transpose(1, 2, 0), interpolation="nearest")
        axes[row, 0].set_title(f"{meta.goal} / {meta.format}\n{subtitles[0]}", fontsize=7)
        for column, (name, channel, cmap, (low, high)) in enumerate(PANELS, start=1):
            values = COLOR_ID_RGB[design.structure[F_COLOR]] if channel == F_COLOR else f_tensor[channel]
            axes[row, column].imshow(values, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            axes[row, column].set_title(f"{name}\n{subtitles[column]}", fontsize=7)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
