"""One attention window of GABIC as a graph: the window's image patch, enlarged, with its node
grid, and the kNN edges of one node (or of every node of the window) drawn node-link style,
α as colour and width.

Data in (an :class:`gabic.inspect.Analysis` with recorded blocks), a Plotly figure out; no state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .common import model_label, plotly, png_data_uri

#: Edges are drawn in this many α bands (one trace each), darkest/thinnest first.
ALPHA_BANDS = 6


def window_edges(block: Any, window: int, nodes: list[int], head: int | None) -> list[tuple[int, int, float]]:
    """``(source node, neighbour node, α)`` of every kNN edge of ``nodes`` in ``window``
    (α of ``head``, or the mean over heads when ``None``)."""
    edges = []
    for node in nodes:
        alpha = block.head_weights(block.alpha[window, :, node], head)  # (k,)
        for slot, neighbour in enumerate(block.neighbours[window, node].tolist()):
            edges.append((node, int(neighbour), float(alpha[slot])))
    return edges


def window_graph_figure(analysis: Any, block_name: str, x: float, y: float, head: int | None = None,
                        all_nodes: bool = False, size: int = 420) -> Any:  # fmt: skip
    """The window of the node under ``(x, y)`` in graph block ``block_name``: its image patch
    enlarged to ``size`` px with the node grid, and the kNN edges of that node (``all_nodes``:
    of every node of the window), coloured (Viridis) and widened by α."""
    go, _ = plotly()
    from plotly.colors import sample_colorscale

    block = analysis.blocks[block_name]
    if block.kind != "graph" or block.neighbours is None:
        raise ValueError(f"{block_name} of {model_label(analysis)} is not a graph block")
    window, clicked = block.node_at(x, y)
    (x0, y0, x1, y1), *_ = block.window_outline(window)
    patch = analysis.original.convert("RGB").crop((int(x0), int(y0), int(x1), int(y1)))
    scale = max(1, size // max(patch.size))
    patch = patch.resize((patch.width * scale, patch.height * scale), Image.Resampling.NEAREST)
    n = block.window * block.window
    cell = block.stride * scale

    def centre(node: int) -> tuple[float, float]:
        row, col = node // block.window, node % block.window
        return (col + 0.5) * cell, (row + 0.5) * cell

    fig = go.Figure(go.Image(source=png_data_uri(patch), hoverinfo="skip"))
    for i in range(block.window + 1):  # the node grid
        fig.add_shape(type="line", x0=i * cell - 0.5, x1=i * cell - 0.5, y0=-0.5, y1=block.window * cell - 0.5,
                      line=dict(color="rgba(255,255,255,0.35)", width=1))  # fmt: skip
        fig.add_shape(type="line", y0=i * cell - 0.5, y1=i * cell - 0.5, x0=-0.5, x1=block.window * cell - 0.5,
                      line=dict(color="rgba(255,255,255,0.35)", width=1))  # fmt: skip
    edges = window_edges(block, window, list(range(n)) if all_nodes else [clicked], head)
    top = max((a for *_, a in edges), default=1.0) or 1.0
    bands = np.minimum((np.array([a for *_, a in edges]) / top * ALPHA_BANDS).astype(int), ALPHA_BANDS - 1)
    colours = sample_colorscale("Viridis", [(b + 0.5) / ALPHA_BANDS for b in range(ALPHA_BANDS)])
    for band in range(ALPHA_BANDS):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for (source, target, _), chosen in zip(edges, bands, strict=True):
            if chosen == band and source != target:
                (sx, sy), (tx, ty) = centre(source), centre(target)
                xs += [sx, tx, None]
                ys += [sy, ty, None]
        if xs:
            width = (1 + 5 * (band + 1) / ALPHA_BANDS) * (0.6 if all_nodes else 1.0)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=colours[band], width=width),
                                     opacity=0.55 if all_nodes else 0.95, hoverinfo="skip", showlegend=False))  # fmt: skip
    targets = {t: a for s, t, a in edges if s == clicked}
    nodes = list(range(n))
    fig.add_trace(go.Scatter(
        x=[centre(v)[0] for v in nodes], y=[centre(v)[1] for v in nodes], mode="markers",
        marker=dict(size=[9 if v in targets else 5 for v in nodes], color=[targets.get(v, 0.0) for v in nodes],
                    colorscale="Viridis", cmin=0, cmax=top, line=dict(color="black", width=1),
                    colorbar=dict(title="α", thickness=12)),
        customdata=[[v, targets.get(v, 0.0)] for v in nodes], showlegend=False,
        hovertemplate="node %{customdata[0]}<br>α from the clicked node %{customdata[1]:.3f}<extra></extra>",
    ))  # fmt: skip
    cx, cy = centre(clicked)
    fig.add_trace(go.Scatter(x=[cx], y=[cy], mode="markers", showlegend=False, hoverinfo="skip",
                             marker=dict(size=14, color="#ff2828", line=dict(color="white", width=2))))  # fmt: skip
    head_text = "mean of heads" if head is None else f"head {head + 1}"
    what = f"every node's {block.k} edges" if all_nodes else f"the clicked node's {block.k} edges"
    fig.update_xaxes(visible=False, range=[-0.5, block.window * cell - 0.5])
    fig.update_yaxes(visible=False, range=[block.window * cell - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(title=dict(text=f"{model_label(analysis)} {block_name}: window {window}, {what} "
                                 f"({head_text})", font=dict(size=13)),
                      height=size + 70, margin=dict(l=5, r=5, t=45, b=5))  # fmt: skip
    return fig


__all__ = ["ALPHA_BANDS", "window_edges", "window_graph_figure"]
