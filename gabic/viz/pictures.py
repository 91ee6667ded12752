"""Bit maps drawn into the photo as plain pictures (RGB images, no Plotly).

A picture is what the app's main screen shows while the quality is scrubbed: a browser shows an
image at once, where each interactive heat map costs it tens of milliseconds to lay out. It
carries what a reader needs without hovering: the model and its total in a title line, the
map over the photo with a chosen opacity, the box of cells clear of the codec's padding
(dotted), and a colour bar with its scale. :func:`gabic.viz.bits_figure` draws the same map as
an interactive figure (hover values) for the notebooks and the report.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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
    bar_top = TITLE_PX + height + 2
    ramp = table[np.linspace(0, 255, width).round().astype(int)]
    picture.paste(Image.fromarray(np.repeat(ramp[None], BAR_PX - 2, axis=0)), (0, bar_top))
    low, middle = (f"-{limit:.3g}", "0") if diverging else ("0", f"{limit / 2:.3g}")
    small = _font(11)
    labels_top = bar_top + BAR_PX - 1
    draw.text((1, labels_top), low, fill="black", font=small)
    draw.text((width // 2, labels_top), middle, fill="black", font=small, anchor="ma")
    draw.text((width - 1, labels_top), f"{limit:.3g} bits/px", fill="black", font=small, anchor="ra")
    return picture


__all__ = ["bits_picture", "colour_indices", "colour_table"]
