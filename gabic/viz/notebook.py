"""Small helpers shared by the companion notebooks (``notebooks/``).

Only presentation lives here: picking demo photos, checking that weights are
present, and Plotly figures. Every number the notebooks show comes from the
codec itself (:mod:`gabic.inspect`, :mod:`gabic.codec`, :mod:`gabic.zoo`).

Fast mode: with ``GABIC_NOTEBOOK_FAST=1`` (set by the notebook tests) the
notebooks use small images and fewer photos/qualities so that all of them run
on two CPU cores in a few minutes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from .. import zoo

#: Photos bundled with scikit-image (no download needed), used by the notebooks.
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
#: ``(height, width)`` of the demo images in fast mode and in normal mode.
FAST_SIZE = (128, 192)
FULL_SIZE = (256, 384)


def fast_mode() -> bool:
    """True when ``GABIC_NOTEBOOK_FAST`` is set to something other than ``0``/empty."""
    return os.environ.get("GABIC_NOTEBOOK_FAST", "").strip() not in ("", "0", "false", "no")


def image_size() -> tuple[int, int]:
    """``(height, width)`` the notebooks resize their photos to."""
    return FAST_SIZE if fast_mode() else FULL_SIZE


def photo(name: str, size: tuple[int, int] | None = None) -> Image.Image:
    """A scikit-image sample photo as RGB, centre-cropped to the aspect of ``size``
    (``(height, width)``, default :func:`image_size`) and resized to it."""
    import skimage.data

    array = getattr(skimage.data, name)()
    image = Image.fromarray(array).convert("RGB")
    height, width = size or image_size()
    scale = min(image.width / width, image.height / height)
    crop_w, crop_h = round(width * scale), round(height * scale)
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    image = image.crop((left, top, left + crop_w, top + crop_h))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def require_weights(names: Iterable[str] = ("gabic-small", "zou2022-small"),
                    qualities: Iterable[int] = zoo.QUALITIES) -> str:  # fmt: skip
    """Check the shipped weights are on disk; return a one-line summary, or raise
    :class:`FileNotFoundError` that says what is missing and how to point elsewhere."""
    missing = [zoo.shipped_path(n, q).name for n in names for q in qualities
               if not zoo.shipped_path(n, q).is_file()]  # fmt: skip
    folder = zoo.weights_dir()
    if missing:
        raise FileNotFoundError(
            f"Weights not found in {folder}: {', '.join(missing)}. Put the shipped "
            "*.safetensors files there, or set the environment variable GABIC_WEIGHTS_DIR "
            "to a folder holding them before starting Jupyter."
        )
    cards = [zoo.shipped_path(n, q).with_suffix(".json") for n in names for q in qualities]
    untrained = any('"trained": false' in c.read_text() for c in cards if c.is_file())
    note = " (note: these are UNTRAINED random weights, numbers are meaningless)" if untrained else ""
    return f"weights from {folder}{note}"


def use_notebook_renderer() -> None:
    """Plotly figures as the JupyterLab MIME type: small outputs, no embedded plotly.js."""
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype"


# ---------------------------------------------------------------- figures
def _as_array(image: Any) -> np.ndarray:
    return np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)


def _png_source(image: Any) -> str:
    """An RGB image as a PNG data URI (far lighter in a figure than a list of pixel values)."""
    import base64
    from io import BytesIO

    buffer = BytesIO()
    Image.fromarray(_as_array(image).astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def images_figure(images: Sequence[Any], titles: Sequence[str], cols: int | None = None,
                  height: int = 260) -> Any:  # fmt: skip
    """A grid of RGB images with titles."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cols = cols or len(images)
    rows = -(-len(images) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles),
                        horizontal_spacing=0.01, vertical_spacing=0.06)  # fmt: skip
    for i, image in enumerate(images):
        fig.add_trace(go.Image(source=_png_source(image)), row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height * rows, margin=dict(l=5, r=5, t=40, b=5))
    return fig


def maps_figure(maps: Sequence[np.ndarray], titles: Sequence[str], cols: int | None = None,
                diverging: bool = False, colorbar_title: str = "bits/px",
                height: int = 260) -> Any:  # fmt: skip
    """Heatmaps on a shared colour scale. ``diverging``: red = positive, blue =
    negative, white = 0 (the convention of the paper's bit-difference maps)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cols = cols or len(maps)
    rows = -(-len(maps) // cols)
    if diverging:
        bound = max(float(np.abs(m).max()) for m in maps) or 1.0
        zmin, zmax, scale = -bound, bound, "RdBu_r"
    else:
        zmin, zmax, scale = 0.0, max(float(m.max()) for m in maps) or 1.0, "Viridis"
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles),
                        horizontal_spacing=0.02, vertical_spacing=0.08)  # fmt: skip
    for i, m in enumerate(maps):
        fig.add_trace(
            go.Heatmap(z=m, zmin=zmin, zmax=zmax, colorscale=scale, showscale=i == 0,
                       colorbar=dict(title=colorbar_title)),
            row=i // cols + 1, col=i % cols + 1,
        )  # fmt: skip
    fig.update_xaxes(visible=False)
    for i in range(len(maps)):
        axis = "x" if i == 0 else f"x{i + 1}"
        fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=axis,
                         row=i // cols + 1, col=i % cols + 1)  # fmt: skip
    fig.update_layout(height=height * rows, margin=dict(l=5, r=5, t=40, b=5))
    return fig


def graph_figure(image: Any, block: Any, window: int, centre: int, neighbours: Sequence[int],
                 weights: Sequence[float], title: str = "") -> Any:  # fmt: skip
    """Draw one node's graph on the image: the window outline, the centre node and a
    line to each neighbour whose width and opacity follow its attention weight.

    ``block`` provides the geometry (a :class:`gabic.inspect.BlockInspection`:
    ``node_to_cell``, ``cell_centre``, ``window_outline``)."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Image(source=_png_source(image)))
    for x0, y0, x1, y1 in block.window_outline(window):
        fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line=dict(color="yellow", width=2))
    cx, cy = block.cell_centre(*block.node_to_cell(window, centre))
    top = max(max(weights, default=0.0), 1e-12)
    xs, ys, texts = [], [], []
    for node, weight in zip(neighbours, weights, strict=True):
        nx, ny = block.cell_centre(*block.node_to_cell(window, int(node)))
        share = float(weight) / top
        fig.add_trace(go.Scatter(x=[cx, nx], y=[cy, ny], mode="lines", hoverinfo="skip",
                                 line=dict(color=f"rgba(255,60,60,{0.25 + 0.75 * share:.2f})",
                                           width=1 + 5 * share), showlegend=False))  # fmt: skip
        xs.append(nx)
        ys.append(ny)
        texts.append(f"node {int(node)}<br>alpha = {float(weight):.3f}")
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", text=texts, hoverinfo="text",
                             marker=dict(color="red", size=8, line=dict(color="white", width=1)),
                             name="neighbours"))  # fmt: skip
    fig.add_trace(go.Scatter(x=[cx], y=[cy], mode="markers", name=f"centre (node {centre})",
                             marker=dict(color="cyan", size=12, symbol="x")))  # fmt: skip
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=420, margin=dict(l=5, r=5, t=40, b=5),
                      legend=dict(orientation="h", y=-0.02))  # fmt: skip
    return fig


def rd_figure(curves: dict[str, tuple[Sequence[float], Sequence[float]]], metric: str = "PSNR (dB)",
              title: str = "") -> Any:  # fmt: skip
    """Rate-distortion curves: ``{label: (bpp values, metric values)}``."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for label, (bpp, value) in curves.items():
        order = np.argsort(np.asarray(bpp, dtype=float))
        fig.add_trace(go.Scatter(x=np.asarray(bpp, dtype=float)[order],
                                 y=np.asarray(value, dtype=float)[order],
                                 mode="lines+markers", name=label))  # fmt: skip
    fig.update_layout(title=title, xaxis_title="bits per pixel", yaxis_title=metric, height=420,
                      margin=dict(l=50, r=10, t=40, b=40))  # fmt: skip
    return fig


# --------------------------------------------------------------- analysis
def block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Average ``(H, W)`` over ``factor x factor`` blocks (for lighter figures); the
    bottom/right remainder that does not fill a block is dropped."""
    height, width = values.shape[0] // factor * factor, values.shape[1] // factor * factor
    trimmed = values[:height, :width]
    return trimmed.reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3))


def texture_map(image: Image.Image, cell: int = 16) -> np.ndarray:
    """``(H, W)`` standard deviation of the luma (0..255) inside each ``cell x cell`` block,
    spread back over the block's pixels: low on flat regions, high on texture/edges.
    Cells are aligned to the image's top-left corner."""
    luma = np.asarray(image.convert("L"), dtype=np.float64)
    height, width = luma.shape
    out = np.empty_like(luma)
    for top in range(0, height, cell):
        for left in range(0, width, cell):
            patch = luma[top : top + cell, left : left + cell]
            out[top : top + cell, left : left + cell] = patch.std()
    return out


__all__ = [
    "FAST_SIZE", "FULL_SIZE", "PHOTOS", "block_mean", "fast_mode", "graph_figure", "image_size", "images_figure",
    "maps_figure", "photo", "rd_figure", "require_weights", "texture_map", "use_notebook_renderer",
]  # fmt: skip
