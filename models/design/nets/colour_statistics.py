"""Colour statistics of a design's structure that count each colour once: its palette and its image's texture.

Area-weighted hue histograms (`layout_statistics`) let one big image or panel outvote the rest of the
palette. The planner draws a palette around the goal's base hue with a spread that shrinks as the
design gets serious, and an image texture by goal and tone; both read more directly off the set of
distinct colours a design uses and off how often the image's colour changes between neighbours (stripes
change along one axis, checkers along both, rings and dots at their period, blobs and landscapes
rarely). Colours are told apart by their CIELAB coordinates rounded to CODE_STEP, so the encoder's
confident soft colours (expected coordinates a hair off the vocabulary's) read like the true IDs.

Each distinct colour is also named as its nearest vocabulary entry (`models.design.color_vocabulary`),
which gives what the planner chose before snapping: the HLS saturation tier (energy raises saturation,
seriousness lowers it), the luminance level, and so the contrast band against the background that
says which palette entry it is, and the hue. The background's hue is the goal's base hue, so each
entry's hue offset from it reads the palette's hue spread (0.08 + 0.4 x (1 - seriousness)).
"""

from __future__ import annotations

import functools
import math

import torch

from models.design.color_vocabulary import (
    CONTRAST_BANDS,
    ENTRIES,
    LEVEL_LUMINANCE,
    MAX_CONTRAST,
    VOCABULARY_LAB,
)

CODE_STEP = 0.02  # CIELAB / 100: vocabulary colours lie further apart than this
MIN_SHARE = 1e-3  # of the design's pixels: a colour used less is an edge's blend, not a palette entry
CHROMATIC = 0.05  # CIELAB chroma / 100 below which a colour counts as grey
CHROMA_FULL = 0.3  # a*, b* / 100: a colour this vivid (chroma 30) counts fully in a hue histogram
HUE_BINS = 12
LAGS = (1, 2, 4, 8)  # pixels: the textures' periods are 4-13 px at 128²
PALETTE_NAMES = (
    tuple(f"palette_hue{k}" for k in range(HUE_BINS))
    + ("palette_hue_cos", "palette_hue_sin", "palette_hue_dispersion", "palette_colours")
    + ("palette_chromatic", "palette_chroma_mean", "palette_chroma_max", "palette_L_range", "palette_L_std")
)
SATURATION_TIERS = (0.0, 0.2, 0.5, 0.85)  # the vocabulary's greys and its HLS saturations
BAND_STATS = ("present", "saturation", "level", "hue_offset")
VOCABULARY_NAMES = (
    ("background_saturation", "background_level", "saturation_mean", "saturation_max")
    + tuple(f"saturation_share{k}" for k in range(len(SATURATION_TIERS)))
    + tuple(f"band{k}_{stat}" for k in range(len(CONTRAST_BANDS)) for stat in BAND_STATS)
    + ("hue_offset_mean", "hue_offset_max", "hue_range")
)
TEXTURE_NAMES = tuple(f"texture_change_{axis}{lag}" for axis in "yx" for lag in LAGS) + (
    "texture_colours",
    "texture_largest_share",
)


def colour_codes(lab: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) CIELAB / 100 -> (B, H, W) int64, one code per colour at CODE_STEP resolution."""
    q = (lab / CODE_STEP).round().long() + 1000
    return (q[:, 0] * 2000 + q[:, 1]) * 2000 + q[:, 2]


def hue_sector_and_weight(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each colour's hue sector (of HUE_BINS) and its weight in a hue histogram (its chroma, capped at 1 from
    CHROMA_FULL on): the one definition every hue histogram of the design statistics uses."""
    sector = ((torch.atan2(b, a) + math.pi) / (2 * math.pi) * HUE_BINS).long().clamp(0, HUE_BINS - 1)
    return sector, (torch.hypot(a, b) / CHROMA_FULL).clamp(max=1.0)


def _distinct(codes: torch.Tensor, lab: torch.Tensor, mask: torch.Tensor, min_count: float):
    """The mean CIELAB (K, 3) and pixel counts (K,) of the colours used at least `min_count` times in `mask`
    (one design: codes (H, W), lab (3, H, W), mask (H, W) bool)."""
    unique, inverse, counts = torch.unique(codes[mask], return_inverse=True, return_counts=True)
    sums = lab.new_zeros(len(unique), 3).index_add_(0, inverse, lab.permute(1, 2, 0)[mask])
    keep = counts >= min_count
    return sums[keep] / counts[keep, None], counts[keep]


def _band_of_step() -> tuple[int, ...]:
    """The CONTRAST_BANDS band of each number of level steps from the background (-1: in none). The levels
    are equally spaced in contrast (ratio MAX_CONTRAST^(1/(LEVELS-1)) per step), so a band is whole steps."""
    steps = len(LEVEL_LUMINANCE)
    ratios = [MAX_CONTRAST ** (step / (steps - 1)) for step in range(steps)]
    return tuple(
        next((k for k, (low, high) in enumerate(CONTRAST_BANDS) if low <= ratio <= high), -1)
        for ratio in ratios
    )


BAND_OF_STEP = _band_of_step()


@functools.cache
def _vocabulary(device: torch.device) -> tuple[torch.Tensor, ...]:
    """Per vocabulary entry: CIELAB / 100, HLS saturation, luminance level and hue (nan for greys); and
    BAND_OF_STEP."""
    return (
        torch.as_tensor(VOCABULARY_LAB / 100, dtype=torch.float32, device=device),
        torch.tensor([saturation for _, saturation, _ in ENTRIES], device=device),
        torch.tensor([float(level) for _, _, level in ENTRIES], device=device),
        torch.tensor([math.nan if hue is None else hue for hue, _, _ in ENTRIES], device=device),
        torch.tensor(BAND_OF_STEP, device=device),
    )


def _turns(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Circular distance between hues in turns (0 .. 0.5); nan where either is a grey's."""
    distance = (a - b).abs() % 1.0
    return torch.minimum(distance, 1 - distance)


def vocabulary_statistics(colours: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """VOCABULARY_NAMES of one design from its distinct colours (K, 3) and background (3,), CIELAB / 100."""
    vocabulary_lab, saturation, level, hue, band_of_step = _vocabulary(colours.device)
    entries = torch.cdist(torch.cat([background[None], colours]), vocabulary_lab).argmin(1)
    page, entries = entries[0], entries[1:]
    entries = entries[entries != page]
    missing = colours.new_tensor(-1.0)
    if len(entries) == 0:
        return torch.cat(
            [torch.stack([saturation[page], level[page]]), missing.expand(len(VOCABULARY_NAMES) - 2)]
        )
    tiers, levels, hues = saturation[entries], level[entries], hue[entries]
    offsets = _turns(hues, hue[page])  # nan for greys, and for all on a grey page
    steps = (levels - level[page]).abs().long()
    band = band_of_step[steps]
    member = band[:, None] == torch.arange(len(CONTRAST_BANDS), device=colours.device)  # (K, bands)
    present = member.any(0)
    values = torch.stack(
        [
            tiers[:, None].where(member, -1.0).amax(0),
            (levels[:, None] * member).sum(0) / member.sum(0).clamp_min(1),
            offsets[:, None].where(member, math.nan).nanmean(0).nan_to_num(-1.0),
        ],
        1,
    ).where(present[:, None], missing)  # absent bands read -1
    per_band = torch.cat([present.float()[:, None], values], 1)  # (bands, BAND_STATS)
    chromatic = hues[~hues.isnan()]
    summary = [
        saturation[page],
        level[page],
        tiers.mean(),
        tiers.max(),
        *((tiers == tier).float().mean() for tier in SATURATION_TIERS),
        *per_band.flatten(),
        offsets.nanmean().nan_to_num(-1.0),
        offsets.nan_to_num(-1.0).max(),
        _turns(chromatic[:, None], chromatic[None]).max() if len(chromatic) > 1 else missing,
    ]
    return torch.stack(summary)


def palette_statistics(
    lab: torch.Tensor, codes: torch.Tensor, inside: torch.Tensor, background: torch.Tensor
) -> torch.Tensor:
    """PALETTE_NAMES + VOCABULARY_NAMES of each design: the hues of its distinct colours (each once,
    weighted by chroma), their mean direction and dispersion, how many there are and how vivid and how
    spread in lightness; then the same colours named in the vocabulary against the `background` (B, 3)."""
    rows = []
    for b in range(lab.shape[0]):
        colours, _ = _distinct(codes[b], lab[b], inside[b], MIN_SHARE * float(inside[b].sum()))
        named = vocabulary_statistics(colours, background[b])
        if len(colours) == 0:
            rows.append(torch.cat([lab.new_zeros(len(PALETTE_NAMES)), named]))
            continue
        a, yellow = colours[:, 1], colours[:, 2]
        chroma = torch.hypot(a, yellow)
        sector, weight = hue_sector_and_weight(a, yellow)
        total = weight.sum().clamp_min(1e-6)
        histogram = lab.new_zeros(HUE_BINS).index_add_(0, sector, weight) / total
        direction = (torch.stack([a, yellow], 1) / chroma.clamp_min(1e-6)[:, None] * weight[:, None]).sum(
            0
        ) / total
        lightness = colours[:, 0]
        summary = [
            torch.where(weight.sum() > 0, 1 - direction.norm(), 0.0),
            lab.new_tensor(float(len(colours))),
            (chroma > CHROMATIC).sum().float(),
            chroma.mean(),
            chroma.max(),
            lightness.max() - lightness.min(),
            lightness.std(correction=0),
        ]
        rows.append(torch.cat([histogram, direction, torch.stack(summary), named]))
    return torch.stack(rows)


def texture_statistics(lab: torch.Tensor, codes: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """TEXTURE_NAMES of each design's image: the share of neighbour pairs (both in the image) whose colour
    differs at each lag along y and x, how many colours it has and the largest one's share."""
    changes = []
    for dim in (1, 2):
        size = codes.shape[dim]
        for lag in LAGS:
            both = image.narrow(dim, lag, size - lag) * image.narrow(dim, 0, size - lag)
            differ = codes.narrow(dim, lag, size - lag) != codes.narrow(dim, 0, size - lag)
            changes.append((differ * both).sum((1, 2)) / both.sum((1, 2)).clamp_min(1))
    counts = []
    for b in range(lab.shape[0]):
        mask = image[b] > 0.5
        _, used = _distinct(codes[b], lab[b], mask, MIN_SHARE * mask.numel())
        share = used.max() / mask.sum() if len(used) else lab.new_tensor(0.0)
        counts.append(torch.stack([lab.new_tensor(float(len(used))), share.float()]))
    return torch.cat([torch.stack(changes, 1), torch.stack(counts)], 1)
