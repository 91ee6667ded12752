"""One node's graph drawn on the image (Pillow): the block's window grid, the node's window,
the node, and an edge to each neighbour coloured (Viridis) and widened by its attention weight.

The geometry comes from a :class:`gabic.inspect.BlockInspection` (``node_to_cell``,
``cell_centre``, ``window_outline``); pixels are those of the analysed image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw


def display_scale(image_size: tuple[int, int], target: int = 512) -> int:
    """Integer upscaling (1..4) that makes a picture at least ``target`` px on its long side
    (browsers only scale it down), pixels kept sharp."""
    return int(min(4, max(1, math.ceil(target / max(image_size)))))


def _rgb(colour: str) -> tuple[int, int, int]:
    """``"rgb(r, g, b)"`` (as Plotly's colour scales give) -> ``(r, g, b)``."""
    inner = colour[colour.index("(") + 1 : colour.index(")")]
    r, g, b = (int(round(float(v))) for v in inner.split(",")[:3])
    return r, g, b


def _window_grid(draw: ImageDraw.ImageDraw, block: Any, size: tuple[int, int], scale: int) -> None:
    width, height = size
    step = block.window * block.stride
    for col in range(block.windows_per_row + 1):
        gx = (col * step + block.shift * block.stride - block.pad_left) * scale
        if 0 <= gx <= width:
            draw.line([(gx, 0), (gx, height)], fill=(255, 255, 255, 90), width=1)
    for row in range(block.padded_grid_height // block.window + 1):
        gy = (row * step + block.shift * block.stride - block.pad_top) * scale
        if 0 <= gy <= height:
            draw.line([(0, gy), (width, gy)], fill=(255, 255, 255, 90), width=1)


def graph_overlay(image: Image.Image, block: Any, window: int, centre: int, neighbours: Sequence[int] = (),
                  weights: Sequence[float] = (), scale: int = 1, grid: bool = True) -> Image.Image:  # fmt: skip
    """The image, upscaled ``scale`` times and dimmed, with node ``centre`` of ``window``
    (red dot), its window (yellow) and a line to each of ``neighbours`` (node indices in the
    same window) coloured and widened by its weight relative to the largest one.

    Args:
        grid: also draw the block's window grid (white lines).
    """
    from plotly.colors import sample_colorscale

    base = image.convert("RGB")
    canvas = base.resize((base.width * scale, base.height * scale), Image.Resampling.NEAREST)
    canvas = Image.blend(canvas, Image.new("RGB", canvas.size, (0, 0, 0)), 0.25)
    draw = ImageDraw.Draw(canvas, "RGBA")
    if grid:
        _window_grid(draw, block, canvas.size, scale)
    for x0, y0, x1, y1 in block.window_outline(window):
        draw.rectangle([x0 * scale, y0 * scale, x1 * scale - 1, y1 * scale - 1], outline=(255, 215, 0, 255),
                       width=max(2, scale))  # fmt: skip
    cx, cy = block.cell_centre(*block.node_to_cell(window, centre))
    radius = max(3, scale * 2)
    weights = [float(w) for w in weights]
    top = max(max(weights, default=0.0), 1e-9)
    colours = sample_colorscale("Viridis", [w / top for w in weights]) if weights else []
    for node, weight, colour in sorted(zip(neighbours, weights, colours, strict=True), key=lambda t: t[1]):
        ex, ey = block.cell_centre(*block.node_to_cell(window, int(node)))
        width = max(1, round((1 + 5 * weight / top) * scale / 2 + 0.5))
        fill = (*_rgb(colour), 255)
        draw.line([(cx * scale, cy * scale), (ex * scale, ey * scale)], fill=fill, width=width)
        draw.ellipse([ex * scale - radius, ey * scale - radius, ex * scale + radius, ey * scale + radius],
                     fill=fill, outline=(0, 0, 0, 255))  # fmt: skip
    r2 = radius + 2
    draw.ellipse([cx * scale - r2, cy * scale - r2, cx * scale + r2, cy * scale + r2], fill=(255, 40, 40, 255),
                 outline=(255, 255, 255, 255), width=2)  # fmt: skip
    return canvas


def inspector_image(analysis: Any, block_name: str, x: float, y: float, head: int | None,
                    scale: int = 1) -> Image.Image:  # fmt: skip
    """:func:`graph_overlay` of the node under ``(x, y)`` in block ``block_name`` of an
    :class:`gabic.inspect.Analysis`, with the graph's weights of ``head`` (or their mean);
    a window-attention block shows the node and its window only."""
    block = analysis.blocks[block_name]
    window, node = block.node_at(x, y)
    neighbours: list[int] = []
    weights: list[float] = []
    if block.kind == "graph":
        edges = block.neighbours_of(x, y)
        neighbours = [e["node"] for e in edges]
        weights = [float(np.mean(e["alpha"])) if head is None else e["alpha"][head] for e in edges]
    return graph_overlay(analysis.original, block, window, node, neighbours, weights, scale)
