"""Rate–distortion figures (one for the app, the notebooks and ``python -m gabic bdrate --plot``),
GABIC's k sweep, and writing a figure to HTML/PNG.

A curve is a mapping of columns: ``"bpp"``, one list per metric (``"psnr"``, ``"ms_ssim"``,
``"ms_ssim_db"``, or any name), and optionally ``"label"`` (one text per point, e.g. ``"q2"``).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .common import CLASSIC_NAMES, method_colours, plotly

#: Axis titles of the usual metric columns (other names are used as they are).
METRIC_TITLES = {"psnr": "PSNR (dB)", "ms_ssim": "MS-SSIM", "ms_ssim_db": "MS-SSIM (dB)"}

Curve = Mapping[str, Sequence[Any]]


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def rd_figure(curves: Mapping[str, Curve], metrics: Sequence[str] = ("psnr",), title: str = "Rate–distortion",
              marked: Mapping[str, str] | None = None, axis_titles: Mapping[str, str] | None = None,
              height: int = 420, panel_width: int | None = None) -> Any:  # fmt: skip
    """Rate–distortion curves, one panel per metric (bits per pixel on x).

    Args:
        curves: name -> curve (see the module docstring); points are drawn in order of rate,
            points whose metric is missing (``None``/NaN) are left out of that panel.
        metrics: the columns to draw; a metric no curve has a value for gets no panel.
        marked: curve name -> point label to ring (e.g. the current quality in the app).
        axis_titles: metric -> y-axis title (default :data:`METRIC_TITLES`).
        panel_width: fixed width per panel in pixels (for a PNG); default responsive.
    """
    go, make_subplots = plotly()
    titles = {**METRIC_TITLES, **(axis_titles or {})}
    shown = [m for m in metrics if any(_finite(v) for c in curves.values() for v in c.get(m, ()))]
    shown = shown or list(metrics[:1])
    fig = make_subplots(rows=1, cols=len(shown), subplot_titles=[titles.get(m, m) for m in shown]
                        if len(shown) > 1 else None)  # fmt: skip
    colours = method_colours(list(curves))
    ring_x: dict[str, list[float]] = {m: [] for m in shown}
    ring_y: dict[str, list[float]] = {m: [] for m in shown}
    for name, curve in curves.items():
        labels = list(curve.get("label", [""] * len(curve["bpp"])))
        dash = "dot" if name.upper() in CLASSIC_NAMES else "solid"
        for col, metric in enumerate(shown, 1):
            points = sorted((float(b), float(v), text) for b, v, text in
                            zip(curve["bpp"], curve.get(metric, ()), labels, strict=False) if _finite(v))  # fmt: skip
            if not points:
                continue
            fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], text=[p[2] for p in points],
                                     mode="lines+markers", name=name, legendgroup=name, showlegend=col == 1,
                                     line=dict(color=colours[name], dash=dash),
                                     hovertemplate=f"{name} %{{text}}: %{{x:.3f}} bpp, %{{y:.3f}}<extra></extra>"),
                          row=1, col=col)  # fmt: skip
            wanted = (marked or {}).get(name)
            for x, y, text in points:
                if wanted is not None and text == wanted:
                    ring_x[metric].append(x)
                    ring_y[metric].append(y)
    for col, metric in enumerate(shown, 1):
        if ring_x[metric]:
            fig.add_trace(go.Scatter(x=ring_x[metric], y=ring_y[metric], mode="markers", name="current",
                                     legendgroup="current", showlegend=col == 1, hoverinfo="skip",
                                     marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(color="black", width=2))),
                          row=1, col=col)  # fmt: skip
        fig.update_xaxes(title_text="bits per pixel", row=1, col=col)
        fig.update_yaxes(title_text=titles.get(metric, metric), row=1, col=col)
    size = {"width": panel_width * len(shown)} if panel_width else {}
    fig.update_layout(title=dict(text=title, font=dict(size=14)), template="plotly_white", height=height,
                      margin=dict(l=10, r=10, t=50, b=10), **size)  # fmt: skip
    return fig


def points_to_curves(points: Sequence[Mapping[str, Any]], metrics: Sequence[str] = ("psnr", "ms_ssim")
                     ) -> dict[str, dict[str, list[Any]]]:  # fmt: skip
    """RD points (dicts with ``method``, ``quality``, ``bpp`` and the metrics) as one curve per
    method, in order of first appearance; each point labelled ``q{quality}``."""
    curves: dict[str, dict[str, list[Any]]] = {}
    for point in points:
        curve = curves.setdefault(point["method"], {"bpp": [], "label": [], **{m: [] for m in metrics}})
        curve["bpp"].append(point["bpp"])
        curve["label"].append(f"q{point['quality']}")
        for metric in metrics:
            curve[metric].append(point.get(metric))
    return curves


def k_sweep_figure(rows: Sequence[Mapping[str, float]], trained_k: int | None) -> Any:
    """bpp and PSNR of GABIC against k (rows with ``k``, ``bpp``, ``psnr``), the trained k marked."""
    go, make_subplots = plotly()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("bits per pixel", "PSNR (dB)"))
    ks = [r["k"] for r in rows]
    fig.add_trace(
        go.Scatter(x=ks, y=[r["bpp"] for r in rows], mode="lines+markers", name="bpp"), row=1, col=1
    )
    fig.add_trace(
        go.Scatter(x=ks, y=[r["psnr"] for r in rows], mode="lines+markers", name="PSNR"), row=1, col=2
    )
    if trained_k is not None:
        for col in (1, 2):
            fig.add_vline(x=trained_k, line_dash="dash", line_color="grey", row=1, col=col)
        fig.add_annotation(x=trained_k, y=1.0, yref="paper", text=f"trained k={trained_k}", showarrow=False,
                           xref="x", yanchor="bottom")  # fmt: skip
    fig.update_xaxes(title="k")
    fig.update_layout(height=330, showlegend=False, margin=dict(l=10, r=10, t=50, b=10),
                      title=dict(text="GABIC k sweep (k ≠ trained k is out of distribution)", font=dict(size=13)))  # fmt: skip
    return fig


def _find_chromium() -> None:
    """Point kaleido 1.x (choreographer) at Debian's chromium when no Chrome of its own is set."""
    if os.environ.get("BROWSER_PATH"):
        return
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium") or ""):
        if candidate and Path(candidate).is_file():
            os.environ["BROWSER_PATH"] = candidate
            return


def save_figure(figure: Any, stem: str | os.PathLike) -> dict[str, str | None]:
    """Write ``stem.html`` always (plotly.js from its CDN) and ``stem.png`` when kaleido can start
    a browser. Returns ``{"html": path, "png": path or None, "png_error": why not or None}``."""
    stem = Path(stem)
    if stem.suffix.lower() in (".html", ".png"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    html = stem.with_suffix(".html")
    figure.write_html(str(html), include_plotlyjs="cdn")
    saved: dict[str, str | None] = {"html": str(html), "png": None, "png_error": None}
    _find_chromium()
    try:
        png = stem.with_suffix(".png")
        figure.write_image(str(png), scale=1.5)
        saved["png"] = str(png)
    except Exception as error:  # kaleido missing, no browser, sandbox failure... never fatal
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        saved["png_error"] = f"{type(error).__name__}: {first_line}"
    return saved
