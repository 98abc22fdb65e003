"""How much of a design's goal and tone any reader can tell from its layout: a near-Bayes ceiling.

The abstractor reads goal and tone (energy, seriousness) off the rendered F_Tensor. The planner
(`datamodules/design/planner.py`) shows them only through noisy choices: hue family, alignment,
arrangement, type sizes, body length, image size and texture, decorations, saturation, margins, dark
palettes. This draws layouts exactly as the dataset does (`render.design_streams`, train and test
streams), without rendering pixels, turns each Layout into a fixed-length vector of what it visibly
holds (format, margin, colours in CIELAB, coverage of images and panels, panel kinds, textures,
arrangement inferred from the geometry, alignment, type sizes and their ratios, line counts, text
contrast) and fits gradient-boosted trees on it. Their test goal accuracy and tone MAE are about the
best any reader of the layout can do; the gap to the abstractor is what the network leaves on the table.

With `--pixels` the same trees also read the abstractor's layout statistics of the rendered F_Tensors
(`nets/layout_statistics.py`), for goal and tone and for the four grammar scores: what the measured
branch holds, read by a model that can threshold it (the network's heads must learn to).

Headline words name the goal (each goal draws from its own word list) and title case marks playful
designs. They are glyphs in the F_Tensor too, but hard to read at small resolutions, so the main row
leaves them out and a second row adds them.

    OMP_NUM_THREADS=1 python experiments/design_meta_ceiling.py --train 8000 --test 2000 --resolution 128
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import confusion_matrix
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamodules.design.grammar import grammar_scores  # noqa: E402
from datamodules.design.layout import ALIGNMENTS, Box, Layout, shape_coverage  # noqa: E402
from datamodules.design.metadata import DesignMeta, sample_metadata  # noqa: E402
from datamodules.design.planner import ARRANGEMENTS, plan_layout  # noqa: E402
from datamodules.design.render import decode_structure, design_streams, render_layout  # noqa: E402
from datamodules.design.textures import TEXTURES  # noqa: E402
from datamodules.design.typography import HEADLINE_WORDS  # noqa: E402
from models.design.color_science import cielab, contrast_ratio, luminance  # noqa: E402
from models.design.nets.layout_statistics import layout_statistics  # noqa: E402
from models.design.schema import GOALS, GRAMMAR_NAMES, TONE_AXES, structure_channels  # noqa: E402

ROLES = ("headline", "subhead", "body")
PANEL_KINDS = ("band", "rule", "frame", "disc")
GRID = 48  # sample points per design side for the coverage shares
CHROMATIC = 5.0  # CIELAB chroma below which a colour's hue is noise (greys)
HEADLINE_VOCABULARY = tuple(sorted({word for words in HEADLINE_WORDS.values() for word in words}))


def draw_layouts(count: int, resolution: int, seed: int, split: str) -> tuple[list[DesignMeta], list[Layout]]:
    """Designs 0..count-1 of `split`: metadata and layout drawn from the dataset's own streams."""
    metas, layouts = [], []
    for index in range(count):
        meta_rng, layout_rng = design_streams(seed, split, index)
        meta = sample_metadata(meta_rng)
        metas.append(meta)
        layouts.append(plan_layout(meta, layout_rng, resolution))
    return metas, layouts


def _hue(lab: np.ndarray) -> tuple[float, float, float]:
    """(cos, sin) of a CIELAB colour's hue angle and its chroma; greys get hue (0, 0)."""
    chroma = float(np.hypot(lab[1], lab[2]))
    if chroma < CHROMATIC:
        return 0.0, 0.0, chroma
    return float(lab[1] / chroma), float(lab[2] / chroma), chroma


def colour_features(layout: Layout) -> dict[str, float]:
    """Background and palette in CIELAB, hue angles, the palette's hue spread, dark or light."""
    features: dict[str, float] = {}
    background = cielab(layout.background)
    cos, sin, chroma = _hue(background)
    features |= {"bg_L": background[0], "bg_a": background[1], "bg_b": background[2], "bg_chroma": chroma}
    features |= {"hue_bg_cos": cos, "hue_bg_sin": sin}
    features["dark"] = float(luminance(layout.background) < 0.2)
    vectors, chromas = [], []
    for k, colour in enumerate(layout.palette):
        lab = cielab(colour)
        cos, sin, chroma = _hue(lab)
        features |= {f"pal{k}_L": lab[0], f"pal{k}_a": lab[1], f"pal{k}_b": lab[2], f"pal{k}_chroma": chroma}
        features |= {f"hue_pal{k}_cos": cos, f"hue_pal{k}_sin": sin}
        vectors.append((cos, sin))
        chromas.append(chroma)
    # the goal sets the palette's base hue: the chroma-weighted mean direction is its best estimate
    vectors, chromas = np.array(vectors), np.array(chromas)
    mean = (vectors * chromas[:, None]).sum(axis=0) / max(chromas.sum(), 1e-9)
    features |= {"hue_mean_cos": mean[0], "hue_mean_sin": mean[1]}
    # seriousness narrows the hue spread: how far chromatic entries wander from their mean direction
    chromatic = vectors[chromas >= CHROMATIC]
    resultant = float(np.linalg.norm(chromatic.mean(axis=0))) if len(chromatic) else 1.0
    features["pal_hue_dispersion"] = 1.0 - resultant
    features["pal_chromatic_count"] = float(len(chromatic))
    features["pal_chroma_mean"] = float(chromas.mean())
    features["pal_chroma_max"] = float(chromas.max())
    return features


def _union(boxes: list[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _panel_kind(layout: Layout, panel) -> str:
    """Bands span the format's width, rules are the other rectangles (under the headline)."""
    if panel.shape == "frame":
        return "frame"
    if panel.shape == "ellipse":
        return "disc"
    width = layout.design[2] - layout.design[0]
    return "band" if panel.box[2] - panel.box[0] >= 0.999 * width else "rule"


def geometry_features(layout: Layout) -> dict[str, float]:
    """Format, margin, coverage of images, panels and text, panel kinds, image shape and texture,
    arrangement inferred from where the image sits relative to the text."""
    x0, y0, x1, y1 = layout.design
    width, height = x1 - x0, y1 - y0
    short = min(width, height)
    features = {"aspect": width / height, "margin": layout.margin / short}
    xs = x0 + (np.arange(GRID) + 0.5) / GRID * width
    ys = y0 + (np.arange(GRID) + 0.5) / GRID * height

    def coverage(shapes) -> float:
        mask = np.zeros((GRID, GRID), dtype=bool)
        for shape in shapes:
            mask |= shape_coverage(shape, xs, ys)
        return float(mask.mean())

    features["cover_panels"] = coverage(layout.panels)
    features["cover_images"] = coverage([image.box for image in layout.images])
    features["cover_text"] = coverage([line.box for line in layout.lines])
    kinds = [_panel_kind(layout, panel) for panel in layout.panels]
    for kind in PANEL_KINDS:
        features[f"panels_{kind}"] = float(kinds.count(kind))
    features["panel_colour_mean"] = (
        float(np.mean([p.color for p in layout.panels])) if layout.panels else -1.0
    )

    text = _union([line.box for line in layout.lines])
    features |= {
        "text_width": (text[2] - text[0]) / width,
        "text_height": (text[3] - text[1]) / height,
        "text_cx": ((text[0] + text[2]) / 2 - x0) / width,
        "text_cy": ((text[1] + text[3]) / 2 - y0) / height,
    }
    arrangement, image_feats = (
        "text_only",
        dict.fromkeys(
            (
                "image_width",
                "image_height",
                "image_aspect",
                "image_cx",
                "image_cy",
                "image_above",
                "image_colours",
            ),
            0.0,
        ),
    )
    texture = np.zeros(len(TEXTURES))
    if layout.images:
        image = layout.images[0]
        box = image.box
        # split: image beside the text column (x ranges barely overlap); stack: above or below it
        overlap = max(0.0, min(box[2], text[2]) - max(box[0], text[0]))
        arrangement = "split" if overlap < 0.3 * min(box[2] - box[0], text[2] - text[0]) else "stack"
        image_feats = {
            "image_width": (box[2] - box[0]) / width,
            "image_height": (box[3] - box[1]) / height,
            "image_aspect": (box[2] - box[0]) / max(box[3] - box[1], 1e-9),
            "image_cx": ((box[0] + box[2]) / 2 - x0) / width,
            "image_cy": ((box[1] + box[3]) / 2 - y0) / height,
            "image_above": float((box[1] + box[3]) < (text[1] + text[3])),
            "image_colours": float(len(image.colors)),
        }
        texture[TEXTURES.index(image.texture)] = 1.0
    features |= image_feats
    features |= {f"texture_{name}": float(t) for name, t in zip(TEXTURES, texture, strict=True)}
    features |= {f"arrangement_{name}": float(arrangement == name) for name in ARRANGEMENTS}
    # the goal's headline share is of the text column: the content width less a split's image and gap
    content = width - 2 * layout.margin
    column = content - (
        image_feats["image_width"] * width + 0.06 * content if arrangement == "split" else 0.0
    )
    features["column"] = column / width
    return features


def text_features(layout: Layout) -> dict[str, float]:
    """Alignment, per-role size, line count and colour (palette entry, contrast, lightness), size ratios."""
    x0, _, x1, _ = layout.design
    width = x1 - x0
    short = min(width, layout.design[3] - layout.design[1])
    features = {f"align_{a}": float(np.mean([line.align == a for line in layout.lines])) for a in ALIGNMENTS}
    sizes = layout.role_sizes()
    content = width - 2 * layout.margin
    for role in ROLES:
        lines = [line for line in layout.lines if line.role == role]
        size = sizes.get(role, 0.0)
        colour = layout.palette[lines[0].color] if lines else layout.background
        features |= {
            f"{role}_lines": float(len(lines)),
            f"{role}_size": size / short,
            f"{role}_size_content": size / content,
            f"{role}_max_width": max((line.width for line in lines), default=0.0) / width,
            f"{role}_colour": float(lines[0].color) if lines else -1.0,
            f"{role}_contrast": float(contrast_ratio(colour, layout.background)),
            f"{role}_L": float(cielab(colour)[0]),
        }
    headline = sizes["headline"]
    features["subhead_ratio"] = headline / sizes["subhead"] if "subhead" in sizes else 0.0
    features["body_ratio"] = sizes["subhead"] / sizes["body"] if {"subhead", "body"} <= sizes.keys() else 0.0
    features["headline_body_ratio"] = headline / sizes["body"] if "body" in sizes else 0.0
    return features


def layout_features(layout: Layout) -> dict[str, float]:
    """Everything visible in the layout except the words: geometry, colour and type. Fixed keys."""
    features = geometry_features(layout) | colour_features(layout) | text_features(layout)
    features["headline_size_column"] = layout.role_sizes()["headline"] / max(features["column"], 1e-9)
    return {name: float(value) for name, value in features.items()}


def word_features(layout: Layout) -> dict[str, float]:
    """Headline word counts (each goal has its own word list) and whether the headline is title case."""
    words = [word for line in layout.lines if line.role == "headline" for word in line.text.split()]
    upper = [word.upper() for word in words]
    features = {f"word_{word}": float(upper.count(word)) for word in HEADLINE_VOCABULARY}
    features["title_case"] = float(any(word != word.upper() for word in words))
    return features


def feature_matrix(layouts: list[Layout], words: bool = False) -> tuple[np.ndarray, list[str]]:
    """(designs, features) array and the feature names, the same columns for every layout."""
    rows = [layout_features(layout) | (word_features(layout) if words else {}) for layout in layouts]
    names = list(rows[0])
    assert all(list(row) == names for row in rows), "every layout must give the same features"
    return np.array([[row[name] for name in names] for row in rows]), names


def pixel_matrix(layouts: list[Layout], chunk: int = 256) -> np.ndarray:
    """(designs, features): the abstractor's layout statistics of each layout's rendered F_Tensor, i.e. what
    its measured branch sees (no layout variables)."""
    rows = []
    for start in range(0, len(layouts), chunk):
        structures = np.stack(
            [decode_structure(render_layout(lay)[1]) for lay in layouts[start : start + chunk]]
        )
        rows.append(layout_statistics(structure_channels(torch.from_numpy(structures))).numpy())
    return np.concatenate(rows)


def tree_options(seed: int) -> dict:
    """The boosted trees' settings: early stopping on a held-out tenth picks the number of trees without
    looking at the test set."""
    return {"max_iter": 500, "learning_rate": 0.05, "early_stopping": True, "random_state": seed}


def median_regressions(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int) -> np.ndarray:
    """Test predictions (designs, targets) in [0, 1] of one tree model per column of `train_y`, each fitted
    with absolute error, so it predicts the median: the MAE-optimal value."""
    return np.clip(
        np.stack(
            [
                HistGradientBoostingRegressor(loss="absolute_error", **tree_options(seed))
                .fit(train_x, train_y[:, k])
                .predict(test_x)
                for k in range(train_y.shape[1])
            ],
            axis=1,
        ),
        0.0,
        1.0,
    )


def fit_and_score(
    train_x: np.ndarray, train_y: np.ndarray, train_tone: np.ndarray, test_x: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Test predictions (goal index, tone) of boosted trees fitted on the training set."""
    goal = HistGradientBoostingClassifier(**tree_options(seed)).fit(train_x, train_y).predict(test_x)
    return goal, median_regressions(train_x, train_tone, test_x, seed)


def _holds_the_margin(name: str) -> bool:
    """The margin itself, the text column (the content's width) and type sizes measured against them."""
    return name in ("margin", "column", "headline_size_column") or name.endswith("_size_content")


def evaluate(train: int, test: int, resolution: int, seed: int, pixels: bool = False) -> dict:
    """Test goal accuracy and tone MAE of the layout-feature models, the constant predictors, hue alone,
    and layout plus headline words; with the goal confusion matrix of the layout-feature model. With
    `pixels`, also of the same trees on the abstractor's layout statistics of the rendered F_Tensors, and
    their grammar MAE there (`grammar_errors`)."""
    train_meta, train_layouts = draw_layouts(train, resolution, seed, "train")
    test_meta, test_layouts = draw_layouts(test, resolution, seed, "test")
    train_y = np.array([m.goal_index for m in train_meta])
    test_y = np.array([m.goal_index for m in test_meta])
    train_tone = np.array([m.tone for m in train_meta])
    test_tone = np.array([m.tone for m in test_meta])
    results: dict = {}

    def score(name: str, train_x: np.ndarray, test_x: np.ndarray) -> np.ndarray:
        goal, tone = fit_and_score(train_x, train_y, train_tone, test_x, seed)
        error = np.abs(tone - test_tone).mean(axis=0)
        results[name] = {"goal_accuracy": float((goal == test_y).mean()), "tone_mae": error.tolist()}
        return goal

    train_x, names = feature_matrix(train_layouts)
    test_x, _ = feature_matrix(test_layouts)
    goal = score("layout", train_x, test_x)
    # the margin shows only where text or an image touches the content's edge or a frame is drawn; how
    # much the tone needs it: the same trees without every variable that holds it
    seen = [i for i, name in enumerate(names) if not _holds_the_margin(name)]
    score("layout-margin", train_x[:, seen], test_x[:, seen])
    results["confusion"] = confusion_matrix(test_y, goal, labels=range(len(GOALS)))
    results["features"] = names
    # the training set's majority goal and median tone: the best predictions that read nothing
    majority = np.bincount(train_y, minlength=len(GOALS)).argmax()
    constant_error = np.abs(np.median(train_tone, axis=0) - test_tone).mean(axis=0)
    results["constant"] = {
        "goal_accuracy": float((test_y == majority).mean()),
        "tone_mae": constant_error.tolist(),
    }
    hue = [i for i, name in enumerate(names) if name.startswith("hue_")]
    hue_goal = HistGradientBoostingClassifier(**tree_options(seed))
    results["hue_goal_accuracy"] = float(
        (hue_goal.fit(train_x[:, hue], train_y).predict(test_x[:, hue]) == test_y).mean()
    )
    train_w, _ = feature_matrix(train_layouts, words=True)
    test_w, _ = feature_matrix(test_layouts, words=True)
    score("layout+words", train_w, test_w)
    if pixels:
        train_px, test_px = pixel_matrix(train_layouts), pixel_matrix(test_layouts)
        score("pixels", train_px, test_px)
        results["grammar"] = grammar_errors(train_px, train_layouts, test_px, test_layouts, seed)
    return results


def grammar_errors(
    train_x: np.ndarray,
    train_layouts: list[Layout],
    test_x: np.ndarray,
    test_layouts: list[Layout],
    seed: int,
) -> dict:
    """Test MAE per grammar score of boosted trees on the F_Tensor statistics, and of the training median:
    what the abstractor's measured branch holds about V_Grammar, read by a model that can threshold it."""
    train_y = np.stack([grammar_scores(layout) for layout in train_layouts])
    test_y = np.stack([grammar_scores(layout) for layout in test_layouts])
    predicted = median_regressions(train_x, train_y, test_x, seed)
    return {
        "trees": np.abs(predicted - test_y).mean(axis=0).tolist(),
        "constant": np.abs(np.median(train_y, axis=0) - test_y).mean(axis=0).tolist(),
    }


def report(results: dict) -> str:
    """The results as a small table and the confusion matrix."""
    lines = [f"{'reader':<24}{'goal acc':>9}{'tone MAE':>10}" + "".join(f"{axis:>13}" for axis in TONE_AXES)]
    for name, label in (
        ("constant", "constant"),
        ("layout", "layout (no words)"),
        ("layout-margin", "layout, margin unseen"),
        ("layout+words", "layout + words"),
        ("pixels", "F_Tensor statistics"),
    ):
        if name not in results:
            continue
        r = results[name]
        mae = r["tone_mae"]
        lines.append(
            f"{label:<24}{r['goal_accuracy']:>9.3f}{np.mean(mae):>10.3f}"
            + "".join(f"{m:>13.3f}" for m in mae)
        )
    lines.append(f"{'hue features only':<24}{results['hue_goal_accuracy']:>9.3f}")
    lines.append("targets: goal >= 0.85, tone MAE <= 0.125 (the abstractor's own: docs/design.md, Results)")
    if "grammar" in results:
        lines.append("")
        lines.append(f"{'grammar MAE':<24}" + "".join(f"{name:>13}" for name in GRAMMAR_NAMES))
        for name, label in (("constant", "constant"), ("trees", "F_Tensor statistics")):
            lines.append(f"{label:<24}" + "".join(f"{m:>13.3f}" for m in results["grammar"][name]))
        lines.append("target: < 0.10 per score")
    lines.append("")
    lines.append("goal confusion, layout (no words): rows true, columns predicted")
    lines.append(" " * 10 + "".join(f"{goal:>10}" for goal in GOALS))
    for goal, row in zip(GOALS, results["confusion"], strict=True):
        lines.append(f"{goal:<10}" + "".join(f"{count:>10d}" for count in row))
    return "\n".join(lines)


def main() -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=int, default=8000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads for the trees")
    parser.add_argument(
        "--pixels",
        action="store_true",
        help="also fit the trees on the layout statistics of the rendered F_Tensors (~25 ms per design), "
        "for goal and tone and for the four grammar scores",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    with threadpool_limits(args.threads):
        results = evaluate(args.train, args.test, args.resolution, args.seed, args.pixels)
    print(
        f"{args.train} train / {args.test} test layouts at {args.resolution}², seed {args.seed}, "
        f"{len(results['features'])} layout features"
    )
    print(report(results))
    print(f"wall time {time.perf_counter() - start:.1f} s")
    return results


if __name__ == "__main__":
    main()
