"""Layout statistics: what a design's structure shows, measured as numbers straight off its pixels.

The abstractor's CNN reads hue well but barely combines the layout cues that decide goal and tone
(docs/design.md: boosted trees on the layout's own variables reach goal 0.88, the CNN alone 0.74):
where the text and the image sit and how much of the page each covers, how big each role's type is,
how its lines align, how far content and frames sit from each edge (the planner's margin shrinks
with energy), the palette's hues per region and per distinct colour, and the image's texture
(`colour_statistics`). `layout_statistics` measures them from the abstractor's input
(`schema.structure_channels`) without parameters or gradient, so the network only has to combine them. Masks are thresholded at 0.5, so the encoder's soft F_Tensors read like true ones.

Coordinates are fractions of the design's rectangle (the pixels not flagged `outside`), so every
format reads on the same scale. Lines are runs of rows holding a role's ink; alignment is the
grammar's own reading (`datamodules.design.grammar.alignment_score`) applied to those lines and the
image block, with the guides estimated from what is visible (leftmost edge, centre, rightmost edge),
at four tolerances around its 1 % of the width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.design.nets.colour_statistics import (
    HUE_BINS,
    PALETTE_NAMES,
    TEXTURE_NAMES,
    VOCABULARY_NAMES,
    colour_codes,
    hue_sector_and_weight,
    palette_statistics,
    texture_statistics,
)
from models.design.schema import HIERARCHY

# where schema.structure_channels puts each channel (the abstractor reads the same indices)
TEXT, IMAGE, HIERARCHY_CHANNEL, LIGHTNESS, GREEN_RED, BLUE_YELLOW, CONTRAST, OUTSIDE = range(8)
TEXT_ROLES = ("headline", "subhead", "body")
# inside the design, neither text nor image: the page (its background colour) and panels (any other colour)
REGIONS = ("text", *TEXT_ROLES, "image", "panel", "page")
REGION_STATS = ("coverage", "L", "a", "b", "contrast", "x", "y", "spread_x", "spread_y")
HUE_REGIONS = ("text", "image", "panel", "page")
HUE_STATS = tuple(f"hue{k}" for k in range(HUE_BINS)) + ("chroma",)
PANEL_DISTANCE = 0.02  # CIELAB / 100: a page pixel this far from the background colour is a panel's
EDGE = 0.1  # the outer tenth of each side: where bands, frames and corner discs sit
PANEL_ZONES = ("top", "bottom", "sides", "corners")
SIDES = ("left", "right", "top", "bottom")
# the planner insets a frame by 0.35 margin (0.12 margin thick) and runs bands 0.35-0.7 margin from the
# edge: read along the middle lines of each side (clear of corner discs) within its outer quarter
EDGE_DEPTH, EDGE_MIDDLE = 0.25, 0.2
EDGE_STATS = ("panel_inset", "panel_thickness", "panel_lines")
LINE_STATS = (
    "lines",
    "line_height",
    "ink_rows",
    "left_std",
    "centre_std",
    "right_std",
    "left",
    "right",
    "width",
)
MAX_LINES = 24  # per role: more than a 128² design holds (the alignment compares every pair of lines)
ALIGN_TOLERANCES = (0.005, 0.01, 0.02, 0.04)  # fractions of the width; the grammar scores at 0.01
NAMES = (
    ("aspect", "content_left", "content_right", "content_top", "content_bottom", "margin", "image_texture")
    + ("chroma_max", "hue_dispersion", "background_L", "background_a", "background_b")
    + tuple(f"panel_{zone}" for zone in PANEL_ZONES)
    + tuple(f"{region}_{stat}" for region in REGIONS for stat in REGION_STATS)
    + tuple(f"{region}_{stat}" for region in HUE_REGIONS for stat in HUE_STATS)
    + tuple(f"{role}_{stat}" for role in ("all_text", *TEXT_ROLES) for stat in LINE_STATS)
    + tuple(f"alignment_{tolerance}" for tolerance in ALIGN_TOLERANCES)
    + ("headline_to_column", "headline_to_subhead", "subhead_to_body")
    + tuple(f"{what}_gap_{side}" for what in ("content", "text") for side in SIDES)
    + tuple(f"{side}_{stat}" for side in SIDES for stat in EDGE_STATS)
    + PALETTE_NAMES
    + VOCABULARY_NAMES
    + TEXTURE_NAMES
)
COUNT = len(NAMES)


def _design_frame(inside: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each pixel's x and y as fractions of the design's rectangle (B, H, W) each, and its width and
    height in pixels (B,) each."""
    _, height, width = inside.shape
    cols, rows = inside.any(1), inside.any(2)  # (B, W), (B, H)
    x0 = cols.float().argmax(1)
    x1 = width - 1 - cols.flip(1).float().argmax(1)
    y0 = rows.float().argmax(1)
    y1 = height - 1 - rows.flip(1).float().argmax(1)
    span_x = (x1 - x0 + 1).clamp_min(1).float()
    span_y = (y1 - y0 + 1).clamp_min(1).float()
    grid_x = torch.arange(width, device=inside.device).float() + 0.5
    grid_y = torch.arange(height, device=inside.device).float() + 0.5
    x = ((grid_x[None] - x0[:, None]) / span_x[:, None])[:, None, :].expand(-1, height, -1)
    y = ((grid_y[None] - y0[:, None]) / span_y[:, None])[:, :, None].expand(-1, -1, width)
    return x, y, span_x, span_y


def _region_stats(structure: torch.Tensor, regions: torch.Tensor, inside: torch.Tensor, x, y) -> torch.Tensor:
    """Coverage, mean colour, centroid and spread of each of (B, R, H, W) regions: (B, R * len(REGION_STATS)),
    zero colour and position for an empty region. One matrix product reads every region."""
    values = torch.cat(
        [structure[:, [LIGHTNESS, GREEN_RED, BLUE_YELLOW, CONTRAST]], torch.stack([x, y, x * x, y * y], 1)], 1
    )
    area = regions.sum((2, 3))
    sums = torch.bmm(regions.flatten(2), values.flatten(2).transpose(1, 2))  # (B, R, 8)
    means = sums / area.clamp_min(1e-6)[..., None]
    colour, position, squares = means[..., :4], means[..., 4:6], means[..., 6:]
    spread = (squares - position**2).clamp_min(0).sqrt()
    coverage = area / inside.sum((1, 2)).clamp_min(1)[:, None]
    return torch.cat([coverage[..., None], colour, position, spread], 2).flatten(1)


def _hue_histogram(structure: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """The region's share of each of HUE_BINS hue sectors, counted by chroma, and its mean chroma."""
    a, b = structure[:, GREEN_RED], structure[:, BLUE_YELLOW]
    chroma = torch.hypot(a, b)
    sector, weight = hue_sector_and_weight(a, b)
    weight = region * weight
    histogram = torch.zeros(region.shape[0], HUE_BINS, device=region.device)
    histogram.scatter_add_(1, sector.flatten(1), weight.flatten(1))
    total = region.sum((1, 2)).clamp_min(1e-6)
    mean_chroma = (region * chroma).sum((1, 2)) / total
    return torch.cat([histogram / total[:, None], mean_chroma[:, None]], 1)


def _lines(ink: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Runs of rows holding ink, as lines: per line (B, L) its left, centre and right edge (design
    fractions), its height in rows, and which of the L slots hold a line."""
    batch, height, width = ink.shape
    rows = ink.any(2)  # (B, H)
    starts = rows & ~F.pad(rows, (1, 0))[:, :-1]
    # 0: no line; 1..MAX_LINES: the line the row belongs to (any further runs join the last)
    label = (starts.long().cumsum(1) * rows).clamp(max=MAX_LINES)
    slots = MAX_LINES + 1
    first = ink.float().argmax(2)
    last = width - 1 - ink.flip(2).float().argmax(2)
    column_x = x[:, 0]  # (B, W): x does not depend on the row
    left_x = column_x.gather(1, first)  # (B, H)
    right_x = column_x.gather(1, last)
    far = torch.full((batch, slots), 1e3, device=ink.device)
    left = far.scatter_reduce(1, label, left_x.masked_fill(~rows, 1e3), "amin")
    right = (-far).scatter_reduce(1, label, right_x.masked_fill(~rows, -1e3), "amax")
    heights = torch.zeros(batch, slots, device=ink.device).scatter_add_(1, label, rows.float())
    valid = heights > 0
    valid[:, 0] = False  # slot 0 collects the rows without ink
    left, right = left.where(valid, torch.zeros_like(left)), right.where(valid, torch.zeros_like(right))
    return left, (left + right) / 2, right, heights, valid


def _masked_std(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    count = valid.sum(1).clamp_min(1)
    mean = (values * valid).sum(1) / count
    return (((values - mean[:, None]) ** 2 * valid).sum(1) / count).sqrt()


def _line_stats(ink: torch.Tensor, x: torch.Tensor, height: int) -> tuple[torch.Tensor, tuple]:
    """LINE_STATS of one role's lines (B, len(LINE_STATS)), and the lines themselves."""
    left, centre, right, heights, valid = lines = _lines(ink, x)
    count = valid.sum(1).float()
    per_line = count.clamp_min(1)
    stats = [
        count,
        heights.sum(1) / per_line / height,
        heights.sum(1) / height,
        _masked_std(left, valid),
        _masked_std(centre, valid),
        _masked_std(right, valid),
        (left * valid).sum(1) / per_line,
        (right * valid).sum(1) / per_line,
        ((right - left) * valid).amax(1),
    ]
    return torch.stack(stats, 1), lines


def _alignment(edges: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The grammar's alignment reading of elements' (B, E, 3) left/centre/right edges, guides estimated
    as the leftmost left edge, the centre and the rightmost right edge: (B, len(ALIGN_TOLERANCES))."""
    far = torch.tensor(1e3, device=edges.device)
    masked = edges.where(valid[..., None], far)
    pairwise = (masked[:, :, None] - masked[:, None]).abs()  # (B, E, E, 3)
    eye = torch.eye(edges.shape[1], dtype=torch.bool, device=edges.device)
    pairwise = pairwise.masked_fill(eye[None, :, :, None], far).amin(2)
    guides = torch.stack(
        [
            edges[..., 0].where(valid, far).amin(1),
            torch.full_like(edges[:, 0, 1], 0.5),
            edges[..., 2].where(valid, -far).amax(1),
        ],
        1,
    )
    nearest = torch.minimum(pairwise, (edges - guides[:, None]).abs()).amin(2)  # (B, E)
    count = valid.sum(1).clamp_min(1)
    scores = [(torch.exp(-nearest / tolerance) * valid).sum(1) / count for tolerance in ALIGN_TOLERANCES]
    return torch.stack(scores, 1)


def layout_statistics(structure: torch.Tensor) -> torch.Tensor:
    """(B, STRUCTURE_CHANNELS, H, W) structure -> (B, COUNT) statistics, named by NAMES; in float32 even
    under mixed precision (sums over every pixel), and without gradient."""
    with torch.no_grad(), torch.autocast(structure.device.type, enabled=False):
        return _statistics(structure.float())


def _statistics(structure: torch.Tensor) -> torch.Tensor:
    inside = structure[:, OUTSIDE] < 0.5
    x, y, width, height = _design_frame(inside)
    inside = inside.float()
    text = (structure[:, TEXT] > 0.5).float() * inside
    image = (structure[:, IMAGE] > 0.5).float() * inside * (1 - text)
    roles = _roles(text, structure[:, HIERARCHY_CHANNEL])
    plain = inside * (1 - text) * (1 - image)
    lab = structure[:, [LIGHTNESS, GREEN_RED, BLUE_YELLOW]]
    background = lab.masked_fill(plain[:, None] < 0.5, float("nan")).flatten(2).nanmedian(2).values
    background = background.nan_to_num(0.0)  # (B, 3): the page's most common colour, whatever else is drawn
    panel = plain * ((lab - background[..., None, None]).square().sum(1) > PANEL_DISTANCE**2)
    page = plain - panel
    chroma = torch.hypot(structure[:, GREEN_RED], structure[:, BLUE_YELLOW]) * inside
    content = ((text + image) > 0).float()
    short = torch.minimum(width, height)[:, None]
    content_gaps = _gaps(content, x, y, width, height) / short
    parts = [
        (width / height)[:, None],
        _content_box(content, x, y),
        content_gaps.amin(1, keepdim=True),
        _texture(structure[:, LIGHTNESS], image)[:, None],
        chroma.flatten(1).amax(1)[:, None],
        _hue_dispersion(structure, inside)[:, None],
        background,
        _zones(panel, inside, x, y),
    ]
    parts.append(_region_stats(structure, torch.stack([text, *roles, image, panel, page], 1), inside, x, y))
    parts += [_hue_histogram(structure, region) for region in (text, image, panel, page)]
    parts += _text_stats(text, roles, image, x, width)
    parts += [content_gaps, _gaps(text, x, y, width, height) / short]
    parts.append(_edge_panels(panel, x, y, width, height, short))
    codes = colour_codes(lab)
    parts += [palette_statistics(lab, codes, inside > 0.5, background), texture_statistics(lab, codes, image)]
    return torch.cat(parts, 1)


def _roles(text: torch.Tensor, hierarchy: torch.Tensor) -> list[torch.Tensor]:
    """The text ink of each of TEXT_ROLES: the role whose hierarchy level is nearest (the encoder's
    reading is soft), split at the midpoints between the levels."""
    levels = sorted((HIERARCHY[role], role) for role in TEXT_ROLES)
    cuts = (
        [-math.inf] + [(a + b) / 2 for (a, _), (b, _) in zip(levels, levels[1:], strict=False)] + [math.inf]
    )
    bands = {role: (hierarchy > cuts[k]) & (hierarchy <= cuts[k + 1]) for k, (_, role) in enumerate(levels)}
    return [text * bands[role] for role in TEXT_ROLES]


def _hue_dispersion(structure: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """1 - the length of the chroma-weighted mean hue direction: 0 for one hue, near 1 for hues all round."""
    a, b = structure[:, GREEN_RED], structure[:, BLUE_YELLOW]
    chroma = torch.hypot(a, b)
    weight = region * hue_sector_and_weight(a, b)[1]
    direction = torch.stack([a, b], 1) / chroma.clamp_min(1e-6)[:, None]
    mean = torch.einsum("bchw,bhw->bc", direction, weight) / weight.sum((1, 2)).clamp_min(1e-6)[:, None]
    return torch.where(weight.sum((1, 2)) > 0, 1 - mean.norm(dim=1), 0.0)


def _zones(panel: torch.Tensor, inside: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Panel coverage of the top and bottom strips, the side strips and the corners (shares of the page)."""
    top, bottom = (y < EDGE).float(), (y > 1 - EDGE).float()
    sides = ((x < EDGE) | (x > 1 - EDGE)).float()
    zones = (top, bottom, sides, sides * (top + bottom))
    area = inside.sum((1, 2)).clamp_min(1)
    return torch.stack([(panel * zone).sum((1, 2)) / area for zone in zones], 1)


def _content_box(content: torch.Tensor, x, y) -> torch.Tensor:
    """The text and image's extent: leftmost, rightmost, top and bottom pixel centre (design fractions)."""
    return torch.stack([*_first_last(content, x), *_first_last(content, y)], 1)


def _gaps(mask: torch.Tensor, x, y, width, height) -> torch.Tensor:
    """Pixels from each edge (SIDES) of the design to the mask's nearest pixel centre; 0 for an empty mask."""
    left, right = _first_last(mask, x)
    top, bottom = _first_last(mask, y)
    gaps = torch.stack([left * width, (1 - right) * width, top * height, (1 - bottom) * height], 1)
    return gaps.where(mask.flatten(1).any(1, keepdim=True), 0.0)


def _edge_panels(panel: torch.Tensor, x, y, width, height, short) -> torch.Tensor:
    """EDGE_STATS per side (SIDES): over the side's middle lines that hold a panel in its outer quarter, the
    median distance of the first panel pixel from the edge and the median panel depth there (short
    sides; -1 when no line has one), and the share of the middle lines that have one."""
    stats = []
    for depth, across, span, along in (
        (x, y, width, 2),
        (1 - x, y, width, 2),
        (y, x, height, 1),
        (1 - y, x, height, 1),
    ):
        middle = ((across - 0.5).abs() < EDGE_MIDDLE) & (depth > 0)
        zone = (panel > 0.5) & middle & (depth < EDGE_DEPTH)
        first = (depth * span[:, None, None]).where(zone, math.inf).amin(along)  # (B, lines)
        has = torch.isfinite(first)
        lines = middle.any(along).sum(1).clamp_min(1)
        inset = first.where(has, math.nan).nanmedian(1).values
        thickness = zone.sum(along).float().where(has, math.nan).nanmedian(1).values
        found = has.any(1, keepdim=True)
        stats.append(torch.stack([inset, thickness], 1).div(short).where(found, -1.0))
        stats.append((has.sum(1) / lines)[:, None])
    return torch.cat(stats, 1)


def _text_stats(text, roles, image, x, width) -> list[torch.Tensor]:
    """LINE_STATS of all text and of each role, the alignment readings, and the type-size ratios."""
    rows = text.shape[1]
    edges, valid, line_stats = [], [], []
    for k, ink in enumerate((text, *roles)):
        stats, (left, centre, right, _, present) = _line_stats(ink > 0.5, x, rows)
        line_stats.append(stats)
        if k > 0:  # the grammar aligns each role's lines (the all-text runs may merge two roles)
            edges.append(torch.stack([left, centre, right], 2))
            valid.append(present)
    image_left, image_right = _first_last(image, x)
    edges.append(torch.stack([image_left, (image_left + image_right) / 2, image_right], 1)[:, None])
    valid.append(image.flatten(1).any(1)[:, None])
    # type sizes against each other and against the widest text line (the planner sizes the headline by
    # its column), all in pixels; 0 where a role is missing
    height = {
        role: stats[:, LINE_STATS.index("line_height")] * rows
        for role, stats in zip(TEXT_ROLES, line_stats[1:], strict=True)
    }
    column = line_stats[0][:, LINE_STATS.index("width")] * width
    pairs = (
        (height["headline"], column),
        (height["headline"], height["subhead"]),
        (height["subhead"], height["body"]),
    )
    ratios = torch.stack([torch.where(b > 0, a / b.clamp_min(1e-6), 0.0) for a, b in pairs], 1)
    return [*line_stats, _alignment(torch.cat(edges, 1), torch.cat(valid, 1)), ratios]


def _texture(lightness: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean |lightness step| between neighbouring pixels both inside the region: flat fills read 0."""
    steps, pairs = 0.0, 0.0
    for dim in (1, 2):
        both = region.narrow(dim, 1, region.shape[dim] - 1) * region.narrow(dim, 0, region.shape[dim] - 1)
        steps = steps + (lightness.diff(dim=dim).abs() * both).sum((1, 2))
        pairs = pairs + both.sum((1, 2))
    return steps / pairs.clamp_min(1)


def _first_last(mask: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The leftmost and rightmost x (design fractions) of a (B, H, W) mask; 0 for an empty mask."""
    far = torch.tensor(1e3, device=mask.device)
    on = mask > 0.5
    left = x.where(on, far).flatten(1).amin(1)
    right = x.where(on, -far).flatten(1).amax(1)
    empty = ~on.flatten(1).any(1)
    return left.masked_fill(empty, 0.0), right.masked_fill(empty, 0.0)
