"""What every view shares: model names, colours, PNG encoding of images."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

#: Display name of each architecture (``Analysis.arch``).
ARCH_NAMES = {"gabic": "GABIC", "zou2022": "Zou2022"}
#: Fixed colours of the methods that appear in many figures; other names take :data:`PALETTE` in turn.
METHOD_COLOURS = {"GABIC": "#d62728", "Zou2022": "#1f77b4", "JPEG": "#7f7f7f", "WEBP": "#2ca02c",
                  "AVIF": "#9467bd"}  # fmt: skip
PALETTE = ("#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#2ca02c", "#9467bd", "#7f7f7f")
#: Classic codecs are drawn dotted, learned ones solid.
CLASSIC_NAMES = ("JPEG", "WEBP", "AVIF")


def model_label(analysis: Any) -> str:
    """``"GABIC"`` or ``"Zou2022"`` for an :class:`gabic.inspect.Analysis` (from its ``arch``)."""
    return ARCH_NAMES.get(analysis.arch, analysis.arch)


def method_colours(names: list[str]) -> dict[str, str]:
    """A colour per name: :data:`METHOD_COLOURS` for known methods, :data:`PALETTE` in order for the rest."""
    colours, spare = {}, iter(PALETTE * (1 + len(names) // len(PALETTE)))
    for name in names:
        known = next((c for m, c in METHOD_COLOURS.items() if name.upper() == m.upper()), None)
        colours[name] = known or next(spare)
    return colours


def png_data_uri(image: Image.Image | np.ndarray) -> str:
    """An RGB image as a ``data:image/png;base64,…`` URI (far lighter in a figure or page than a
    list of pixel values)."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image).astype(np.uint8))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def plotly() -> tuple[Any, Any]:
    """``(plotly.graph_objects, plotly.subplots.make_subplots)``, imported when first drawn
    (plotly is an optional dependency of the library)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    return go, make_subplots
