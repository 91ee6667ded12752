"""Views drawn as plain pictures (RGB images, no Plotly): the bit maps in the photo, and the
attention over the window of a clicked node.

These are the views the app redraws on every quality scrub and click: a browser shows a picture
at once, where each interactive heat map cost it 60-70 ms to lay out (so a scrub took twice the
page's 0.25 s budget). A picture carries what a reader needs without hovering: a title line, the
map with its colour bar and scale, and the marks (the padding-free box, the clicked node). The
exact numbers are in the tables next to them (metrics, neighbours and their α).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .common import model_label
from .maps import BitMaps

#: Height in px of the title line and of the colour bar (with its labels) added to a picture.
TITLE_PX, BAR_PX, BAR_LABELS_PX = 20, 10, 16


@functools.lru_cache(maxsize=4)
def colour_table(scale: str) -> np.ndarray:
    """``(256, 3)`` uint8 colours of Plotly's colour scale ``scale`` (e.g. ``"Viridis"``,
    ``"RdBu_r"``), sampled evenly from its low to its high end."""
    from plotly.colors import sample_colorscale

    samples = sample_colorscale(scale, list(np.linspace(0.0, 1.0, 256)))
    return np.array([[round(float(c)) for c in s[4:-1].split(",")] for s in samples], dtype=np.uint8)


def colour_indices(values: np.ndarray, limit: float, diverging: bool) -> np.ndarray:
    """``(H, W)`` indices 0..255 into a colour table: ``0..limit`` → 0..255, or ``-limit..limit``
    → 0..255 (0 in the middle) when ``diverging``; values beyond the scale take its end."""
    limit = limit if limit > 0 else 1.0
    values = np.asarray(values, dtype=np.float32)
    if diverging:
        share = np.clip(values * (0.5 / limit) + 0.5, 0.0, 1.0)
    else:
        share = np.clip(values * (1.0 / limit), 0.0, 1.0)
    return np.rint(share * 255.0).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _dotted_box(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], top: int, dash: int = 4) -> None:
    """The outline of ``box`` (pixels of the map, shifted down by ``top``) as white dashes."""
    x0, y0, x1, y1 = box[0], box[1] + top, box[2] - 1, box[3] - 1 + top
    for start in range(x0, x1 + 1, 2 * dash):
        end = min(start + dash - 1, x1)
        draw.line([(start, y0), (end, y0)], fill="white")
        draw.line([(start, y1), (end, y1)], fill="white")
    for start in range(y0, y1 + 1, 2 * dash):
        end = min(start + dash - 1, y1)
        draw.line([(x0, start), (x0, end)], fill="white")
        draw.line([(x1, start), (x1, end)], fill="white")


def bits_picture(maps: BitMaps, which: str, photo: Image.Image, opacity: float = 0.75) -> Image.Image:
    """One map of :func:`gabic.viz.bit_maps` over ``photo``, as an RGB picture.

    Args:
        maps: the bit maps of two models on one image (``(H, W)`` bits per pixel each).
        which: ``"first"`` or ``"second"`` (Viridis from 0 to :attr:`BitMaps.limit`, shared by
            both) or ``"difference"`` (``first - second``: red where the first model spends more,
            blue where less, white equal; ``±`` :attr:`BitMaps.difference_limit`).
        photo: the analysed photo, ``W × H`` like the maps.
        opacity: of the map over the photo, 0 (only the photo) … 1 (only the map).

    Returns:
        a ``W × (TITLE_PX + H + BAR_PX + BAR_LABELS_PX)`` picture: title, map over the photo
        with the padding-free box dotted, colour bar with its ends and middle labelled.
    """
    if which not in ("first", "second", "difference"):
        raise ValueError(f"which must be 'first', 'second' or 'difference', got {which!r}")
    values = getattr(maps, which)
    height, width = values.shape
    if photo.size != (width, height):
        raise ValueError(f"the photo is {photo.size[0]}×{photo.size[1]}, the maps {width}×{height}")
    diverging = which == "difference"
    limit = maps.difference_limit if diverging else maps.limit
    table = colour_table("RdBu_r" if diverging else "Viridis")
    coloured = Image.fromarray(table[colour_indices(values, limit, diverging)])
    blended = Image.blend(photo.convert("RGB"), coloured, min(max(float(opacity), 0.0), 1.0))

    picture = Image.new("RGB", (width, TITLE_PX + height + BAR_PX + BAR_LABELS_PX), "white")
    picture.paste(blended, (0, TITLE_PX))
    draw = ImageDraw.Draw(picture)
    font = _font(13)
    if diverging:
        title = f"{maps.labels[0]} - {maps.labels[1]}: {maps.totals['difference']:+,.0f} bits"
    else:
        label = maps.labels[0 if which == "first" else 1]
        title = f"{label}: {maps.totals[which]:,.0f} bits ({maps.part})"
    draw.text((2, 2), title, fill="black", font=font)
    if maps.interior is not None and maps.interior != (0, 0, width, height):
        _dotted_box(draw, maps.interior, TITLE_PX)
    low, middle = (f"-{limit:.3g}", "0") if diverging else ("0", f"{limit / 2:.3g}")
    _colour_bar(draw, picture, table, TITLE_PX + height + 2, (low, middle, f"{limit:.3g} bits/px"))
    return picture


def _colour_bar(draw: ImageDraw.ImageDraw, picture: Image.Image, table: np.ndarray, top: int,
                labels: tuple[str, str, str]) -> None:  # fmt: skip
    """A colour bar across ``picture`` at row ``top`` with three labels (low, middle, high)."""
    width = picture.width
    ramp = table[np.linspace(0, 255, width).round().astype(int)]
    picture.paste(Image.fromarray(np.repeat(ramp[None], BAR_PX - 2, axis=0)), (0, top))
    small, below = _font(11), top + BAR_PX - 1
    draw.text((1, below), labels[0], fill="black", font=small)
    draw.text((width // 2, below), labels[1], fill="black", font=small, anchor="ma")
    draw.text((width - 1, below), labels[2], fill="black", font=small, anchor="ra")


def window_attention_picture(analyses: Sequence[Any], block_name: str, x: float, y: float,
                             head: int | None, side: int = 200) -> Image.Image:  # fmt: skip
    """The attention of the node under ``(x, y)`` over its window in ``block_name``, one grid per
    analysis side by side on one Magma scale (0 … the largest α of them all).

    A graph block draws its k weights (zero elsewhere), a window block its whole-window
    attention (its window may be shifted); the clicked node is crossed in cyan. ``head`` is a
    0-based head or ``None`` for the mean of the heads; each grid is about ``side`` px.

    Returns:
        a picture: the title line, one labelled grid per analysis, and the colour bar of α.
    """
    blocks = [analysis.blocks[block_name] for analysis in analyses]
    maps = [block.attention_map(x, y, head) for block in blocks]
    top = max((float(np.max(m)) for m in maps), default=1.0)
    top = top if top > 0 else 1.0
    table = colour_table("Magma")
    cells = [max(2, side // block.window) for block in blocks]
    gap, label_px = 16, 18
    width = sum(block.window * cell for block, cell in zip(blocks, cells, strict=True)) + gap * (
        len(blocks) - 1
    )
    grid_px = max(block.window * cell for block, cell in zip(blocks, cells, strict=True))
    height = TITLE_PX + label_px + grid_px + 4 + BAR_PX + BAR_LABELS_PX
    picture = Image.new("RGB", (max(width, 240), height), "white")
    draw = ImageDraw.Draw(picture)
    head_text = "mean of heads" if head is None else f"head {head + 1}"
    draw.text((2, 2), f"{block_name}, {head_text} (x: the clicked node)", fill="black", font=_font(13))
    left = 0
    for analysis, block, values, cell in zip(analyses, blocks, maps, cells, strict=True):
        kind = "k neighbours" if block.kind == "graph" else "whole window"
        draw.text((left + 1, TITLE_PX), f"{model_label(analysis)}: {kind}", fill="black", font=_font(12))
        grid = table[colour_indices(np.asarray(values), top, diverging=False)]
        grid = np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)
        picture.paste(Image.fromarray(grid), (left, TITLE_PX + label_px))
        _, node = block.node_at(x, y)
        cx = left + (node % block.window) * cell + cell // 2
        cy = TITLE_PX + label_px + (node // block.window) * cell + cell // 2
        arm = max(2, cell // 3)
        for dx in (-1, 1):
            draw.line([(cx - arm, cy - dx * arm), (cx + arm, cy + dx * arm)], fill=(0, 229, 255), width=2)
        left += block.window * cell + gap
    _colour_bar(
        draw, picture, table, TITLE_PX + label_px + grid_px + 2, ("0", f"{top / 2:.3g}", f"alpha {top:.3g}")
    )
    return picture


__all__ = ["bits_picture", "colour_indices", "colour_table", "window_attention_picture"]
