"""Heat maps and pictures on a grid: the bit-allocation maps of two models and their difference
(:func:`bit_maps`; drawn into the photo by :func:`gabic.viz.bits_picture`), any ``(H, W)``
array, and plain RGB images.

One pooling rule for every map drawn lighter than its pixels (:func:`pool_mean`), one heat-map
grid (:func:`maps_figure`) used by the notebooks and the app's sections.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .. import codec
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
        limit: shared top of the colour scale of the two maps (99th percentile of the pixels
            inside ``interior``).
        difference_limit: symmetric limit of the difference scale (99th percentile of
            ``|difference|`` inside ``interior``).
        part: ``"total"``, ``"y"`` or ``"z"``.
        totals: bits (estimated) of ``first``, ``second``, their ``difference``, and
            ``more_pixels``: the share of pixels where ``first`` spends more.
        interior: ``(x0, y0, x1, y1)`` pixels whose latent cells lie wholly inside the photo.
            The codec pads the photo to a multiple of 64 px; the cells along the border straddle
            that padding and carry its bits, so they are left out of the colour scale.
    """

    labels: tuple[str, str]
    first: np.ndarray
    second: np.ndarray
    difference: np.ndarray
    limit: float
    difference_limit: float
    part: str
    totals: dict[str, float]
    interior: tuple[int, int, int, int] | None = None


def part_map(analysis: Any, part: str) -> np.ndarray:
    """``(H, W)`` bits per pixel of an :class:`gabic.inspect.Analysis`: ``total``, ``y`` or ``z``."""
    if part not in PARTS:
        raise ValueError(f"part must be 'total', 'y' or 'z', got {part!r}")
    if part == "y":
        return analysis.y_bits_per_pixel_map
    if part == "z":
        return analysis.z_bits_per_pixel_map
    return analysis.bits_per_pixel_map


def interior_box(height: int, width: int, stride: int, layout: str = codec.DEFAULT_LAYOUT
                 ) -> tuple[int, int, int, int]:  # fmt: skip
    """``(x0, y0, x1, y1)``: the pixels of a ``height × width`` photo away from the codec's padding.

    The codec pads the photo to a multiple of 64 px (where: ``layout``, :mod:`gabic.codec.layout`).
    Along a padded side, the outermost row (column) of ``stride``-px latent cells either straddles
    the padding or receives the bits of the cells wholly in it (:func:`gabic.inspect.spread_bits`);
    the box leaves those cells out. A side without padding, or a photo too small to leave a cell,
    keeps its full extent."""
    left, right, top, bottom = codec.padding(height, width, layout)

    def span(size: int, before: int, after: int) -> tuple[int, int]:
        first, last = before // stride, (before + size - 1) // stride
        start = (first + 1) * stride - before if before else 0
        end = last * stride - before if after else size
        return (start, end) if end > start else (0, size)

    (x0, x1), (y0, y1) = span(width, left, right), span(height, top, bottom)
    return x0, y0, x1, y1


def bit_maps(first: Any, second: Any, part: str = "total", percentile: float = 99.0) -> BitMaps:
    """Per-pixel bits of two analyses of the same image (``part`` = total, y or z), the
    difference ``first − second`` and the scales to draw them with: the ``percentile`` of the
    pixels whose cells lie wholly inside the photo (:func:`interior_box`), so the padded border
    does not set the scale."""
    a, b = part_map(first, part), part_map(second, part)
    if a.shape != b.shape:
        raise ValueError("the two analyses are of images of different sizes")
    difference = a - b
    box = interior_box(*a.shape, 64 if part == "z" else 16)
    inside = (slice(box[1], box[3]), slice(box[0], box[2]))
    limit = float(max(np.percentile(a[inside], percentile), np.percentile(b[inside], percentile), 1e-6))
    difference_limit = float(max(np.percentile(np.abs(difference[inside]), percentile), 1e-6))
    totals = {"first": float(a.sum(dtype=np.float64)), "second": float(b.sum(dtype=np.float64))}
    totals["difference"] = totals["first"] - totals["second"]
    totals["more_pixels"] = float((difference > 0).mean())
    labels = (model_label(first), model_label(second))
    return BitMaps(labels, a, b, difference, limit, difference_limit, part, totals, box)


def bits_at(analyses: Sequence[Any], x: float, y: float) -> str:
    """The bits per pixel (y + z) of each analysis at pixel ``(x, y)`` (clamped to the photo),
    as text: ``"GABIC 0.412, Zou2022 0.398"``."""
    values = []
    for analysis in analyses:
        bits = analysis.bits_per_pixel_map
        row, col = min(max(int(y), 0), bits.shape[0] - 1), min(max(int(x), 0), bits.shape[1] - 1)
        values.append(f"{model_label(analysis)} {float(bits[row, col]):.3f}")
    return ", ".join(values)


def bit_summary(maps: BitMaps) -> str:
    """One sentence (Markdown) with the totals of :func:`bit_maps`."""
    t, (one, two) = maps.totals, maps.labels
    sign = "more" if t["difference"] > 0 else "fewer"
    part = {"total": "y + z", "y": "y only", "z": "z only"}[maps.part]
    return (f"**{part}** — {one} {t['first']:,.0f} bits, {two} {t['second']:,.0f} bits: {one} spends "
            f"{abs(t['difference']):,.0f} bits {sign} ({t['difference'] / max(t['second'], 1e-9):+.1%}); "
            f"it spends more on {t['more_pixels']:.0%} of the pixels (red).")  # fmt: skip
