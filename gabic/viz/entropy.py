"""Figures of the entropy model: bits per channel and slice, a channel's maps, the max-entropy
channel, progressive decoding, and the kNN graph's adjacent-edge share.

Each function takes the data of :mod:`gabic.inspect` (:class:`~gabic.inspect.entropy.EntropyView`,
:class:`~gabic.inspect.progressive.ProgressiveDecoding`,
:class:`~gabic.inspect.graph_structure.AdjacencyShare`) and returns a Plotly figure; no state.

Maps are readable by construction: the colour scale ends at a high percentile of the cells that
show the image (:func:`robust_range` over :attr:`~gabic.inspect.entropy.EntropyView.in_image`),
not at the maximum, and the cells in the codec's padding are cropped (or, with
``crop_padding=False``, shown with the image's outline dotted). Why: the codec pads the image to a
multiple of 64 px, and the sharp step between the photo and the padding costs many bits in the
border cells, which would otherwise set the whole scale and leave the photo dark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..inspect.entropy import Y_STRIDE
from .common import model_label, plotly, png_data_uri

if TYPE_CHECKING:
    from ..inspect.entropy import EntropyView
    from ..inspect.graph_structure import AdjacencyShare
    from ..inspect.progressive import ProgressiveDecoding

#: Percentile of the image's cells where map colour scales end.
DEFAULT_PERCENTILE = 99.0


def robust_range(values: np.ndarray, mask: np.ndarray | None = None, percentile: float = DEFAULT_PERCENTILE,
                 symmetric: bool = False) -> tuple[float, float]:  # fmt: skip
    """Colour range ``(low, high)`` of ``values`` from the cells where ``mask`` is True (all
    when ``None``): ``(0, p-th percentile)``, or ``(−p, p)`` of ``|values|`` if ``symmetric``.
    Never an empty range."""
    chosen = np.asarray(values, dtype=np.float64)
    if mask is not None:
        chosen = chosen[..., np.asarray(mask, dtype=bool)]
    chosen = chosen[np.isfinite(chosen)]
    if chosen.size == 0:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        bound = float(np.percentile(np.abs(chosen), percentile)) or 1.0
        return -bound, bound
    return 0.0, float(np.percentile(chosen, percentile)) or 1.0


def _cells(view: EntropyView, crop_padding: bool) -> tuple[slice, slice]:
    return view.image_cells if crop_padding else (slice(None), slice(None))


def _heatmap(go: Any, values: np.ndarray, rows: slice, cols: slice, zrange: tuple[float, float],
             colorscale: str, name: str, colorbar: dict[str, Any] | None) -> Any:  # fmt: skip
    y0, x0 = rows.start or 0, cols.start or 0
    return go.Heatmap(z=values[rows, cols], x0=x0, y0=y0, zmin=zrange[0], zmax=zrange[1],
                      colorscale=colorscale, showscale=colorbar is not None, colorbar=colorbar,
                      name=name, hovertemplate=f"row %{{y}}, col %{{x}}<br>{name} = %{{z:.3f}}<extra></extra>")  # fmt: skip


def _image_outline(fig: Any, view: EntropyView, row: int, col: int) -> None:
    """The original image's border, in latent-cell units, on subplot (row, col)."""
    left, _, top, _ = view.pad
    fig.add_shape(type="rect", x0=left / Y_STRIDE - 0.5, x1=(left + view.width) / Y_STRIDE - 0.5,
                  y0=top / Y_STRIDE - 0.5, y1=(top + view.height) / Y_STRIDE - 0.5,
                  line=dict(color="white", width=1, dash="dot"), row=row, col=col)  # fmt: skip


def _square_cells(fig: Any, count: int) -> None:
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    for i in range(count):
        axis = "x" if i == 0 else f"x{i + 1}"
        fig.update_yaxes(autorange="reversed", scaleanchor=axis, showticklabels=False, showgrid=False,
                         zeroline=False, row=1, col=i + 1)  # fmt: skip


def _bar_under(fig: Any, index: int, title: str) -> dict[str, Any]:
    """A horizontal colour bar under subplot ``index`` (0-based, first row)."""
    axis = fig.layout["xaxis" if index == 0 else f"xaxis{index + 1}"]
    start, end = axis.domain
    return dict(orientation="h", x=(start + end) / 2, xanchor="center", y=-0.08, yanchor="top",
                len=(end - start) * 0.95, thickness=10, title=dict(text=title, side="top"))  # fmt: skip


# ------------------------------------------------------------------- channels
def channel_bits_figure(view: EntropyView, sort: bool = True) -> Any:
    """Bits of every latent channel, most expensive first (``sort``) or in channel order;
    coloured by slice."""
    go, _ = plotly()
    bits = view.channel_bits
    order = view.channels_by_bits if sort else np.arange(view.channels)
    slices = [view.slice_of(c) for c in order]
    fig = go.Figure(go.Bar(
        x=np.arange(view.channels) if sort else order, y=bits[order],
        marker=dict(color=slices, colorscale="Turbo", cmin=0, cmax=max(view.num_slices - 1, 1),
                    colorbar=dict(title="slice")),
        customdata=np.stack([order, slices], axis=1),
        hovertemplate="channel %{customdata[0]} (slice %{customdata[1]})<br>%{y:,.0f} bits<extra></extra>",
    ))  # fmt: skip
    top = view.max_entropy_channel
    fig.update_layout(
        title=f"{model_label(view)}: bits per latent channel ({view.y_bits_total:,.0f} in all; "
        f"most: channel {top}, {bits[top]:,.0f} bits)",
        xaxis_title="channels, most bits first" if sort else "channel", yaxis_title="estimated bits",
        height=320, margin=dict(l=60, r=10, t=50, b=40), bargap=0.05,
    )  # fmt: skip
    return fig


def channel_maps_figure(view: EntropyView, channel: int | None = None, crop_padding: bool = True,
                        percentile: float = DEFAULT_PERCENTILE) -> Any:  # fmt: skip
    """One latent channel as five maps: ``y``, ``ŷ`` (decoded, after latent residual
    prediction), ``μ``, ``σ`` and ``−log₂ p``. ``y``, ``ŷ`` and ``μ`` share one diverging scale.
    ``channel``: default the max-entropy channel."""
    go, make_subplots = plotly()
    channel = view.max_entropy_channel if channel is None else int(channel)
    if not 0 <= channel < view.channels:
        raise ValueError(f"channel must be in 0..{view.channels - 1}, got {channel}")
    rows, cols = _cells(view, crop_padding)
    inside = view.in_image
    titles = ["y", "ŷ (decoded)", "μ (predicted mean)", "σ (predicted scale)", "−log₂ p (bits)"]
    fig = make_subplots(rows=1, cols=5, subplot_titles=titles, horizontal_spacing=0.015)
    latent = np.stack([view.y[channel], view.y_hat[channel], view.mu[channel]])
    shared = robust_range(latent, inside, percentile, symmetric=True)
    panels = [
        (view.y[channel], shared, "RdBu_r", "y", None),
        (view.y_hat[channel], shared, "RdBu_r", "ŷ", _bar_under(fig, 1, "y, ŷ, μ")),
        (view.mu[channel], shared, "RdBu_r", "μ", None),
        (view.sigma[channel], robust_range(view.sigma[channel], inside, percentile), "Viridis", "σ",
         _bar_under(fig, 3, "σ")),
        (view.bits[channel], robust_range(view.bits[channel], inside, percentile), "Inferno", "bits",
         _bar_under(fig, 4, "bits")),
    ]  # fmt: skip
    for i, (values, zrange, scale, name, bar) in enumerate(panels):
        fig.add_trace(_heatmap(go, values, rows, cols, zrange, scale, name, bar), row=1, col=i + 1)
        if not crop_padding:
            _image_outline(fig, view, 1, i + 1)
    _square_cells(fig, 5)
    note = "padding cropped" if crop_padding else "dotted: the image; outside it, the codec's padding"
    fig.update_layout(
        title=f"{model_label(view)}: channel {channel} (slice {view.slice_of(channel)}), "
        f"{view.channel_bits[channel]:,.0f} bits · colours end at the {percentile:g}th percentile · {note}",
        height=300, margin=dict(l=5, r=5, t=60, b=70),
    )  # fmt: skip
    return fig


def max_entropy_figure(views: Mapping[str, EntropyView] | Sequence[EntropyView], crop_padding: bool = True,
                       percentile: float = DEFAULT_PERCENTILE) -> Any:  # fmt: skip
    """The ``−log₂ p`` map of each model's max-entropy channel side by side (Zou2022's Fig. 3),
    on one colour scale. ``views``: ``{label: view}`` or a sequence (labelled by architecture)."""
    go, make_subplots = plotly()
    items = dict(views) if isinstance(views, Mapping) else {model_label(v): v for v in views}
    maps, titles = [], []
    for label, view in items.items():
        channel = view.max_entropy_channel
        share = view.channel_bits[channel] / view.y_bits_total if view.y_bits_total else 0.0
        maps.append(view.bits[channel])
        titles.append(
            f"{label}: channel {channel}, {view.channel_bits[channel]:,.0f} bits ({share:.1%} of y)"
        )
    first = next(iter(items.values()))
    inside = [values[view.in_image] for values, view in zip(maps, items.values(), strict=True)]
    zrange = robust_range(np.concatenate(inside), None, percentile)
    fig = make_subplots(rows=1, cols=len(items), subplot_titles=titles, horizontal_spacing=0.02)
    for i, (values, view) in enumerate(zip(maps, items.values(), strict=True)):
        rows, cols = _cells(view, crop_padding)
        bar = dict(title="bits") if i == len(items) - 1 else None
        fig.add_trace(_heatmap(go, values, rows, cols, zrange, "Inferno", "bits", bar), row=1, col=i + 1)
        if not crop_padding:
            _image_outline(fig, view, 1, i + 1)
    _square_cells(fig, len(items))
    fig.update_layout(title=f"Bits of the max-entropy channel ({first.width}×{first.height} image; colours "
                      f"end at the {percentile:g}th percentile)", height=360,
                      margin=dict(l=5, r=5, t=70, b=10))  # fmt: skip
    return fig


def slice_bits_figure(views: Mapping[str, EntropyView] | Sequence[EntropyView]) -> Any:
    """Left: estimated bits of each slice, in coding order, per model. Right: bits per pixel
    of ``y`` and of ``z`` (the hyperprior's side information), stacked, per model."""
    go, make_subplots = plotly()
    items = dict(views) if isinstance(views, Mapping) else {model_label(v): v for v in views}
    fig = make_subplots(rows=1, cols=2, column_widths=[0.7, 0.3], horizontal_spacing=0.1,
                        subplot_titles=["bits per slice (coding order)", "y and z"])  # fmt: skip
    for label, view in items.items():
        fig.add_trace(go.Bar(x=np.arange(view.num_slices), y=view.slice_bits, name=label,
                             hovertemplate="slice %{x}: %{y:,.0f} bits<extra>" + label + "</extra>"),
                      row=1, col=1)  # fmt: skip
    labels = list(items)
    y_bpp = [v.y_bits_total / v.pixels for v in items.values()]
    z_bpp = [v.z_bits_total / v.pixels for v in items.values()]
    fig.add_trace(go.Bar(x=labels, y=y_bpp, name="y (bpp)", marker_color="#4c72b0", offsetgroup="parts",
                         hovertemplate="%{x}: y %{y:.4f} bpp<extra></extra>"), row=1, col=2)  # fmt: skip
    fig.add_trace(go.Bar(x=labels, y=z_bpp, base=y_bpp, name="z (bpp)", marker_color="#dd8452",
                         offsetgroup="parts", textposition="outside",
                         text=[f"z: {z / (y + z):.1%}" if y + z else "" for y, z in zip(y_bpp, z_bpp, strict=True)],
                         hovertemplate="%{x}: z %{y:.4f} bpp<extra></extra>"), row=1, col=2)  # fmt: skip
    fig.update_xaxes(title_text="slice", dtick=1, row=1, col=1)
    fig.update_yaxes(title_text="estimated bits", row=1, col=1)
    fig.update_yaxes(title_text="bits per pixel", row=1, col=2)
    fig.update_layout(barmode="group", height=340, margin=dict(l=60, r=10, t=50, b=40))
    return fig


# ----------------------------------------------------------------- progressive
def progressive_strip_figure(decoding: ProgressiveDecoding, steps: Sequence[int] | None = None,
                             cols: int = 5, height: int = 200) -> Any:  # fmt: skip
    """The reconstructions of a progressive decoding, titled with slices, bpp and PSNR
    (``steps``: which numbers of slices to show, default all)."""
    go, make_subplots = plotly()
    chosen = (
        [decoding.steps.index(s) for s in steps] if steps is not None else list(range(len(decoding.steps)))
    )
    cols = max(1, min(cols, len(chosen)))
    rows = -(-len(chosen) // cols)
    titles = [f"{decoding.steps[i]}/{decoding.num_slices} slices · {decoding.bpp[i]:.3f} bpp · "
              f"{decoding.psnr[i]:.1f} dB" for i in chosen]  # fmt: skip
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.01,
                        vertical_spacing=0.08)  # fmt: skip
    for n, i in enumerate(chosen):
        fig.add_trace(go.Image(source=png_data_uri(decoding.reconstructions[i]), name=titles[n]),
                      row=n // cols + 1, col=n % cols + 1)  # fmt: skip
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(title=f"{model_label(decoding)}: decoding the first s slices (the rest from their "
                      "predicted means)", height=height * rows + 60,
                      margin=dict(l=5, r=5, t=70, b=5))  # fmt: skip
    return fig


def progressive_curve_figure(decodings: Mapping[str, ProgressiveDecoding] | Sequence[ProgressiveDecoding]
                             ) -> Any:  # fmt: skip
    """PSNR against cumulative bpp as slices are added, one line per model (markers = s)."""
    go, _ = plotly()
    items = dict(decodings) if isinstance(decodings, Mapping) else {model_label(d): d for d in decodings}
    fig = go.Figure()
    for label, decoding in items.items():
        fig.add_trace(go.Scatter(
            x=decoding.bpp, y=decoding.psnr, mode="lines+markers+text", name=label,
            text=[str(s) for s in decoding.steps], textposition="top left",
            hovertemplate="%{text} slices: %{x:.3f} bpp, %{y:.2f} dB<extra>" + label + "</extra>",
        ))  # fmt: skip
    fig.update_layout(title="Progressive decoding: quality as slices arrive (labels: slices decoded)",
                      xaxis_title="estimated bits per pixel (z + first s slices)", yaxis_title="PSNR (dB)",
                      height=380, margin=dict(l=60, r=10, t=50, b=50))  # fmt: skip
    return fig


# ------------------------------------------------------------------- graph
def adjacency_figure(shares: Mapping[str, AdjacencyShare]) -> Any:
    """Per graph block: the share of kNN edges joining 8-adjacent cells (image nodes) against the
    share a random choice of k neighbours would give."""
    go, _ = plotly()
    names = list(shares)
    fig = go.Figure([
        go.Bar(x=names, y=[shares[n].share for n in names], name="kNN graph",
               text=[f"×{shares[n].ratio:.2f}" for n in names], textposition="outside"),
        go.Bar(x=names, y=[shares[n].random_share for n in names], name="random choice of k"),
    ])  # fmt: skip
    fig.update_layout(barmode="group", title="Share of graph edges joining adjacent cells (8-neighbourhood)",
                      yaxis_title="share of edges", yaxis_range=[0, 1], height=340,
                      margin=dict(l=60, r=10, t=50, b=40))  # fmt: skip
    return fig


__all__ = [
    "DEFAULT_PERCENTILE", "adjacency_figure", "channel_bits_figure", "channel_maps_figure", "max_entropy_figure",
    "progressive_curve_figure", "progressive_strip_figure", "robust_range", "slice_bits_figure",
]  # fmt: skip
