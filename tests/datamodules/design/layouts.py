"""Hand-built layouts for grammar and rendering tests: every element placed by the test, not the planner."""

from __future__ import annotations

from datamodules.design.colors import nearest_vocabulary_color
from datamodules.design.layout import Box, ImageBlock, Layout, Panel, TextLine
from datamodules.design.typography import line_height, text_width
from models.design.color_science import RGB

RESOLUTION = 64
WHITE, BLACK, GREY, LIGHT_GREY = (255, 255, 255), (0, 0, 0), (120, 120, 120), (140, 140, 140)
SQUARE: Box = (0.0, 0.0, 1.0, 1.0)
# red, green, blue, yellow as the colour vocabulary has them (the renderer draws only vocabulary colours)
VIVID = tuple(
    nearest_vocabulary_color(rgb) for rgb in ((200, 30, 30), (30, 160, 30), (30, 30, 200), (220, 200, 40))
)


def line(
    role: str, x: float, top: float, size_px: int, align: str = "left", color: int = 0, text: str = "HELLO"
) -> TextLine:
    """A text line measured as the planner measures it."""
    size = size_px / RESOLUTION
    return TextLine(
        role,
        text,
        x,
        top,
        size,
        align,
        color,
        text_width(text, size, RESOLUTION),
        line_height(size, RESOLUTION),
    )


def image(
    box: Box, colors: tuple[int, ...] = (2, 3), texture: str = "checker", shading: float = 0.0
) -> ImageBlock:
    return ImageBlock(box, texture, colors, seed=7, shading=shading)


def layout(
    lines: list[TextLine],
    images: list[ImageBlock] = (),
    panels: list[Panel] = (),
    background: RGB = WHITE,
    text_color: RGB = BLACK,
    design: Box = SQUARE,
    margin: float = 0.1,
) -> Layout:
    """A layout whose palette entry 0 is `text_color` (entries 1-4 fixed, distinct vocabulary colours)."""
    palette = (text_color, *VIVID)
    return Layout(RESOLUTION, design, margin, background, palette, tuple(panels), tuple(images), tuple(lines))
