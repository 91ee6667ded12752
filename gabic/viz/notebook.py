"""Small helpers shared by the companion notebooks (``notebooks/``).

Only what a notebook needs around the views of :mod:`gabic.viz`: picking demo
photos, checking that weights are present, the Jupyter renderer, and the texture
map of notebook 3. Every number the notebooks show comes from the codec itself
(:mod:`gabic.inspect`, :mod:`gabic.codec`, :mod:`gabic.zoo`).

Fast mode: with ``GABIC_NOTEBOOK_FAST=1`` (set by the notebook tests) the
notebooks use small images and fewer photos/qualities so that all of them run
on two CPU cores in a few minutes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

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


# --------------------------------------------------------------- analysis
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


__all__ = ["FAST_SIZE", "FULL_SIZE", "PHOTOS", "fast_mode", "image_size", "photo", "require_weights",
           "texture_map", "use_notebook_renderer"]  # fmt: skip
