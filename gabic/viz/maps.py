"""Heat maps and pictures on a grid: bit-allocation maps of two models, difference maps, any
``(H, W)`` array, and plain RGB images.

One pooling rule for every map drawn lighter than its pixels (:func:`pool_mean`), one heat-map
grid (:func:`maps_figure`) used by the app, the notebooks and the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .common import model_label, plotly, png_data_uri

#: Parts of the bit maps: both latents, the main latent y, the hyperprior's z.
PARTS = ("total", "y", "z")


def pool_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Mean of ``(H, W)`` over ``factor × factor`` cells aligned to the top-left corner.

    The result is ``(ceil(H / factor), ceil(W / factor))``. A cell on the bottom or right
    edge that the array does not fill is the mean of the values it does cover: nothing is
    padded and nothing dropped, so ``sum(cell mean × values covered) == values.sum()``.
    """
    values = np.asarray(values, dtype=np.float64)
    if factor <= 1:
        return values
    height, width = values.shape
    rows, cols = np.arange(0, height, factor), np.arange(0, width, factor)
    sums = np.add.reduceat(np.add.reduceat(values, rows, axis=0), cols, axis=1)
    counts = np.outer(np.diff(np.append(rows, height)), np.diff(np.append(cols, width)))
    return sums / counts


def _grid(count: int, cols: int | None) -> tuple[int, int]:
    cols = max(1, min(cols or count, count))
    return -(-count // cols), cols


def maps_figure(maps: Sequence[np.ndarray], titles: Sequence[str], cols: int | None = None,
                diverging: bool = False, limit: float | None = None, colorbar_title: str = "bits/px",
                max_cells: int | None = None, height: int = 260) -> Any:  # fmt: skip
    """``(H, W)`` arrays as heat maps on one colour scale, in a grid with one title each.

    Args:
        maps: the arrays; axes are image pixels (x to the right, y down), aspect kept.
        diverging: red = positive, blue = negative, white = 0 (the paper's bit-difference
            maps); otherwise Viridis from 0.
        limit: top of the scale (``±limit`` when diverging); default the largest value drawn.
        max_cells: pool every map with :func:`pool_mean` to at most this many cells per side
            (one factor for all); hover positions stay in pixels.
    """
    go, make_subplots = plotly()
    factor = max(1, math.ceil(max(max(m.shape) for m in maps) / max_cells)) if max_cells else 1
    drawn = [pool_mean(m, factor) for m in maps]
    if limit is None:
        limit = max(float(np.abs(m).max() if diverging else m.max()) for m in drawn)
    limit = limit if limit and math.isfinite(limit) and limit > 0 else 1.0
    scale = dict(colorscale="RdBu_r", cmin=-limit, cmax=limit) if diverging else \
        dict(colorscale="Viridis", cmin=0.0, cmax=limit)  # fmt: skip
    rows, cols = _grid(len(maps), cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles),
                        horizontal_spacing=0.02, vertical_spacing=0.08)  # fmt: skip
    for i, pooled in enumerate(drawn):
        xs = (np.arange(pooled.shape[1]) + 0.5) * factor - 0.5
        ys = (np.arange(pooled.shape[0]) + 0.5) * factor - 0.5
        fig.add_trace(go.Heatmap(z=pooled, x=xs, y=ys, coloraxis="coloraxis",
                                 hovertemplate=f"x %{{x:.0f}}, y %{{y:.0f}}: %{{z:.3f}} {colorbar_title}"
                                 "<extra></extra>"), row=i // cols + 1, col=i % cols + 1)  # fmt: skip
        axis = "x" if i == 0 else f"x{i + 1}"
        fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=axis, constrain="domain",
                         row=i // cols + 1, col=i % cols + 1)  # fmt: skip
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_layout(coloraxis=dict(**scale, colorbar=dict(title=colorbar_title, thickness=12)),
                      height=height * rows, margin=dict(l=5, r=5, t=40, b=5))  # fmt: skip
    return fig


def images_figure(images: Sequence[Image.Image | np.ndarray], titles: Sequence[str], cols: int | None = None,
                  height: int = 260) -> Any:  # fmt: skip
    """RGB images in a grid, one title each (embedded as PNG)."""
    go, make_subplots = plotly()
    rows, cols = _grid(len(images), cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles),
                        horizontal_spacing=0.01, vertical_spacing=0.06)  # fmt: skip
    for i, image in enumerate(images):
        fig.add_trace(go.Image(source=png_data_uri(image)), row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height * rows, margin=dict(l=5, r=5, t=40, b=5))
    return fig


# ------------------------------------------------------------------------ bit maps
@dataclass(frozen=True)
class BitMaps:
    """Bits per pixel of two analyses of one image, on one scale, and their difference.

    Attributes:
        labels: names of the two models (e.g. ``("GABIC", "Zou2022")``).
        first, second: ``(H, W)`` bits per pixel; ``difference``: ``first − second``.
        limit: shared top of the colour scale of the two maps (99.5th percentile).
        difference_limit: symmetric limit of the difference scale (99.5th percentile of ``|difference|``).
        part: ``"total"``, ``"y"`` or ``"z"``.
        totals: bits (estimated) of ``first``, ``second``, their ``difference``, and
            ``more_pixels``: the share of pixels where ``first`` spends more.
    """

    labels: tuple[str, str]
    first: np.ndarray
    second: np.ndarray
    difference: np.ndarray
    limit: float
    difference_limit: float
    part: str
    totals: dict[str, float]


def part_map(analysis: Any, part: str) -> np.ndarray:
    """``(H, W)`` bits per pixel of an :class:`gabic.inspect.Analysis`: ``total``, ``y`` or ``z``."""
    if part not in PARTS:
        raise ValueError(f"part must be 'total', 'y' or 'z', got {part!r}")
    if part == "y":
        return analysis.y_bits_per_pixel_map
    if part == "z":
        return analysis.z_bits_per_pixel_map
    return analysis.bits_per_pixel_map


def bit_maps(first: Any, second: Any, part: str = "total") -> BitMaps:
    """Per-pixel bits of two analyses of the same image (``part`` = total, y or z), the
    difference ``first − second`` and the scales to draw them with."""
    a, b = part_map(first, part), part_map(second, part)
    if a.shape != b.shape:
        raise ValueError("the two analyses are of images of different sizes")
    difference = a - b
    limit = float(max(np.percentile(a, 99.5), np.percentile(b, 99.5), 1e-6))
    difference_limit = float(max(np.percentile(np.abs(difference), 99.5), 1e-6))
    totals = {"first": float(a.sum(dtype=np.float64)), "second": float(b.sum(dtype=np.float64))}
    totals["difference"] = totals["first"] - totals["second"]
    totals["more_pixels"] = float((difference > 0).mean())
    labels = (model_label(first), model_label(second))
    return BitMaps(labels, a, b, difference, limit, difference_limit, part, totals)


def bit_summary(maps: BitMaps) -> str:
    """One sentence (Markdown) with the totals of :func:`bit_maps`."""
    t, (one, two) = maps.totals, maps.labels
    sign = "more" if t["difference"] > 0 else "fewer"
    part = {"total": "y + z", "y": "y only", "z": "z only"}[maps.part]
    return (f"**{part}** — {one} {t['first']:,.0f} bits, {two} {t['second']:,.0f} bits: {one} spends "
            f"{abs(t['difference']):,.0f} bits {sign} ({t['difference'] / max(t['second'], 1e-9):+.1%}); "
            f"it spends more on {t['more_pixels']:.0%} of the pixels (red).")  # fmt: skip


def bits_figure(maps: BitMaps, which: str, max_cells: int = 160, height: int = 320) -> Any:
    """One map of :func:`bit_maps` as a heat map: ``which`` = ``"first"`` or ``"second"`` (shared
    scale 0..limit) or ``"difference"`` (red: the first model spends more, blue: less)."""
    if which == "difference":
        title = f"{maps.labels[0]} − {maps.labels[1]} (bits/pixel)"
        return maps_figure([maps.difference], [title], diverging=True, limit=maps.difference_limit,
                           max_cells=max_cells, height=height)  # fmt: skip
    if which not in ("first", "second"):
        raise ValueError(f"which must be 'first', 'second' or 'difference', got {which!r}")
    label = maps.labels[0 if which == "first" else 1]
    title = f"{label}: {maps.totals[which]:,.0f} bits"
    return maps_figure([getattr(maps, which)], [title], limit=maps.limit, max_cells=max_cells, height=height)
