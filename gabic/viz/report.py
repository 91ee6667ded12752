"""The metrics table and one self-contained HTML report (plotly.js inline, images as base64 PNG)
that opens offline."""

from __future__ import annotations

import html
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

from .common import model_label, png_data_uri

METRIC_HEADERS = ["model", "bpp (real)", "bpp (estimated)", "PSNR dB", "MS-SSIM", "encode ms", "decode ms"]


def metrics_rows(analyses: Sequence[Any]) -> list[list[Any]]:
    """One row of :data:`METRIC_HEADERS` per :class:`gabic.inspect.Analysis`, rounded for display
    (MS-SSIM ``None`` where it is undefined: sides ≤ 160 px; decode ms ``None`` where the
    analysis took its reconstruction from the encoder instead of decoding)."""
    rows = []
    for a in analyses:
        name = model_label(a) + (f" (k={a.k})" if a.k is not None else "")
        rows.append([name, round(a.bpp, 4), round(a.bpp_estimated, 4), round(a.psnr, 2),
                     None if math.isnan(a.ms_ssim) else round(a.ms_ssim, 4),
                     round(a.encode_ms, 1), None if math.isnan(a.decode_ms) else round(a.decode_ms, 1)])  # fmt: skip
    return rows


def html_report(analyses: Sequence[Any], settings: Mapping[str, Any], figures: Mapping[str, Any],
                images: Mapping[str, Image.Image] | None = None,
                tables: Mapping[str, tuple[list[str], list[list[Any]]]] | None = None,
                weights: Mapping[str, str] | None = None, about: Sequence[str] = (),
                title: str = "GABIC vs Zou2022 on one image") -> str:  # fmt: skip
    """One HTML page (no network needed): what was analysed, settings, metrics, images, tables
    and Plotly figures (plotly.js inlined once).

    Args:
        analyses: the analyses of one image shown side by side; the page always holds the
            original, each reconstruction and the metrics table.
        settings: what the user chose (quality, k, block, head, point...).
        figures: title -> Plotly figure (``None`` is skipped).
        images: title -> more pictures; tables: title -> (headers, rows).
        weights: model name -> which weights were used.
        about: lines describing the input image (size, conversions).
    """
    from plotly.offline import get_plotlyjs

    esc = html.escape
    pictures = {"Original": analyses[0].original}
    pictures.update({f"{model_label(a)} reconstruction": a.reconstruction for a in analyses})
    pictures.update(images or {})
    all_tables = {"Metrics": (METRIC_HEADERS, metrics_rows(analyses)), **(tables or {})}
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
        ".imgs{display:flex;flex-wrap:wrap;gap:12px}.imgs figure{margin:0}.imgs img{max-width:380px}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>{esc(title)}</h1>",
        "<p>" + "<br>".join(esc(line) for line in [*about, f"generated {time.strftime('%Y-%m-%d %H:%M')}"]) + "</p>",
        "<h2>Settings</h2><ul>" + "".join(f"<li>{esc(str(k))}: {esc(str(v))}</li>" for k, v in settings.items()) + "</ul>",
    ]  # fmt: skip
    if weights:
        parts.append("<h2>Weights</h2><ul>" + "".join(f"<li>{esc(name)}: {esc(w)}</li>"
                                                      for name, w in weights.items()) + "</ul>")  # fmt: skip
    for heading, (headers, rows) in all_tables.items():
        parts.append(f"<h2>{esc(heading)}</h2><table><tr>" + "".join(f"<th>{esc(str(h))}</th>" for h in headers)
                     + "</tr>")  # fmt: skip
        parts.extend("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>" for row in rows)
        parts.append("</table>")
    parts.append("<h2>Images</h2><div class='imgs'>")
    for caption, picture in pictures.items():
        parts.append(f"<figure><img src='{png_data_uri(picture)}' alt='{esc(caption)}'>"
                     f"<figcaption>{esc(caption)}</figcaption></figure>")  # fmt: skip
    parts.append("</div>")
    for heading, fig in figures.items():
        if fig is not None:
            parts.append(f"<h2>{esc(heading)}</h2>")
            parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
    parts.append("</body></html>")
    return "\n".join(parts)
