"""The layout of a design: what is where, in canvas units (fractions of the square canvas side).

A `Layout` is geometry and colour, planned for one resolution (text is measured at the pixel size it
is drawn at); the renderer draws it and the grammar scores read it. `plan_layout` (in planner.py) builds one from V_Meta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.design.color_science import RGB

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in canvas units, x right, y down

ALIGNMENTS = ("left", "centre", "right")
TEXT_ROLES = ("headline", "subhead", "body")
PANEL_SHAPES = ("rect", "ellipse", "frame")


@dataclass(frozen=True)
class TextLine:
    """One line of text: `x` is its left edge, centre or right edge as `align` says; `top` its ascender line.

    `size` is a whole number of pixels at the layout's resolution; `width` and `height` are the
    line's advance width and ascender-to-descender height there (typography.text_width/line_height).
    """

    role: str
    text: str
    x: float
    top: float
    size: float
    align: str
    color: int  # palette entry
    width: float
    height: float

    @property
    def box(self) -> Box:
        shift = {"left": 0.0, "centre": 0.5, "right": 1.0}[self.align]
        left = self.x - shift * self.width
        return (left, self.top, left + self.width, self.top + self.height)


@dataclass(frozen=True)
class ImageBlock:
    """A picture area filled with a procedural texture (textures.py) in some palette entries."""

    box: Box
    texture: str
    colors: tuple[int, ...]
    seed: int
    shading: float  # amplitude of the smooth light gradient laid over the texture


@dataclass(frozen=True)
class Panel:
    """A decorative shape (rule, band, frame, disc) in one palette entry; neither text nor image."""

    box: Box
    shape: str
    color: int
    thickness: float = 0.0  # frames only: the width of the outline


@dataclass(frozen=True)
class Layout:
    """Everything drawn on a canvas of `resolution` pixels. Drawing order: background, panels, images, text."""

    resolution: int
    design: Box  # the format's rectangle, letterboxed in the unit canvas
    margin: float  # the page margin the layout was built on (its alignment guides)
    background: RGB
    palette: tuple[RGB, ...]
    panels: tuple[Panel, ...]
    images: tuple[ImageBlock, ...]
    lines: tuple[TextLine, ...]

    @property
    def guides(self) -> tuple[float, float, float]:
        """The page's vertical guide lines: left margin, centre, right margin."""
        x0, _, x1, _ = self.design
        return (x0 + self.margin, (x0 + x1) / 2, x1 - self.margin)

    def role_sizes(self) -> dict[str, float]:
        """Font size of each text role present (a role has one size)."""
        return {line.role: line.size for line in self.lines}


def design_box(aspect: tuple[int, int]) -> Box:
    """The (width:height) format's rectangle centred in the unit canvas, touching two opposite sides."""
    width, height = aspect
    w, h = (1.0, height / width) if width >= height else (width / height, 1.0)
    return ((1 - w) / 2, (1 - h) / 2, (1 + w) / 2, (1 + h) / 2)


def shape_coverage(panel_or_box: Panel | Box, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Boolean mask (len(ys), len(xs)) of the sample points (canvas units) inside a shape or box.

    The renderer samples pixel centres with it and the grammar a coarse grid, so both see one shape.
    """
    if isinstance(panel_or_box, Panel):
        shape, box, thickness = panel_or_box.shape, panel_or_box.box, panel_or_box.thickness
    else:
        shape, box, thickness = "rect", panel_or_box, 0.0
    x0, y0, x1, y1 = box
    inside_x, inside_y = (xs >= x0) & (xs < x1), (ys >= y0) & (ys < y1)
    if shape == "rect":
        return inside_y[:, None] & inside_x[None, :]
    if shape == "ellipse":
        u = (xs - (x0 + x1) / 2) / max((x1 - x0) / 2, 1e-9)
        v = (ys - (y0 + y1) / 2) / max((y1 - y0) / 2, 1e-9)
        return v[:, None] ** 2 + u[None, :] ** 2 <= 1.0
    if shape == "frame":
        inner_x = (xs >= x0 + thickness) & (xs < x1 - thickness)
        inner_y = (ys >= y0 + thickness) & (ys < y1 - thickness)
        return (inside_y[:, None] & inside_x[None, :]) & ~(inner_y[:, None] & inner_x[None, :])
    raise ValueError(f"unknown panel shape {shape!r}; expected one of {PANEL_SHAPES}")
