"""Colour statistics of a design's structure that count each colour once: its palette and its image's texture.

Area-weighted hue histograms (`layout_statistics`) let one big image or panel outvote the rest of the
palette. The planner draws a palette around the goal's base hue with a spread that shrinks as the
design gets serious, and an image texture by goal and tone; both read more directly off the set of
distinct colours a design uses and off how often the image's colour changes between neighbours (stripes
change along one axis, checkers along both, rings and dots at their period, blobs and landscapes
rarely). Colours are told apart by their CIELAB coordinates rounded to CODE_STEP, so the encoder's
confident soft colours (expected coordinates a hair off the vocabulary's) read like the true IDs.
"""

from __future__ import annotations

import math

import torch

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


def palette_statistics(lab: torch.Tensor, codes: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """PALETTE_NAMES of each design: the hues of its distinct colours (each once, weighted by chroma), their
    mean direction and dispersion, how many there are and how vivid and how spread in lightness."""
    rows = []
    for b in range(lab.shape[0]):
        colours, _ = _distinct(codes[b], lab[b], inside[b], MIN_SHARE * float(inside[b].sum()))
        if len(colours) == 0:
            rows.append(lab.new_zeros(len(PALETTE_NAMES)))
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
        rows.append(torch.cat([histogram, direction, torch.stack(summary)]))
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
