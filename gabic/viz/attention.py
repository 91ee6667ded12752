"""The attention around one clicked point: the neighbour table, how an edge's score splits,
every block × head, and the figures of them.

Inputs are :class:`gabic.inspect.BlockInspection` / :class:`gabic.inspect.Analysis`; ``(x, y)``
is a pixel of the analysed image, ``head`` a 0-based head or ``None`` for the mean over heads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .common import plotly


# ------------------------------------------------------------------------------ data
def node_summary(block: Any, x: float, y: float) -> dict[str, Any]:
    """Window, node, grid cell and pixel centre of the node under ``(x, y)``."""
    window, node = block.node_at(x, y)
    cell = block.node_to_cell(window, node)
    return {"block": block.name, "window": window, "node": node, "cell": cell,
            "centre": block.cell_centre(*cell)}  # fmt: skip


def neighbour_rows(block: Any, x: float, y: float) -> list[dict[str, Any]]:
    """One row per graph neighbour of the node under ``(x, y)``, strongest mean α first:
    ``rank``, ``slot`` (edge index), ``x``, ``y`` (pixel centre), ``offset`` (dr, dc),
    ``feature_distance``, ``edge_attribute``, ``alpha_mean``, ``alpha`` (per head)."""
    rows = []
    for slot, edge in enumerate(block.neighbours_of(x, y)):
        rows.append({"slot": slot, "x": edge["centre"][0], "y": edge["centre"][1],
                     "offset": tuple(edge["offset"]), "feature_distance": edge["feature_distance"],
                     "edge_attribute": edge["edge_attribute"], "alpha": edge["alpha"],
                     "alpha_mean": float(np.mean(edge["alpha"]))})  # fmt: skip
    rows.sort(key=lambda r: -r["alpha_mean"])
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def neighbour_table(rows: Sequence[Mapping[str, Any]], heads: int) -> tuple[list[str], list[list[Any]]]:
    """Headers and rounded values of :func:`neighbour_rows` for display."""
    headers = ["#", "edge", "x", "y", "offset (dr, dc)", "feature dist.", "α mean"]
    headers += [f"α h{h + 1}" for h in range(heads)]
    values = [
        [r["rank"], r["slot"], round(r["x"], 1), round(r["y"], 1), f"{r['offset'][0]:+d}, {r['offset'][1]:+d}",
         round(r["feature_distance"], 4), round(r["alpha_mean"], 4)] + [round(a, 4) for a in r["alpha"]]
        for r in rows
    ]  # fmt: skip
    return headers, values


def score_anatomy(block: Any, x: float, y: float, slot: int) -> list[dict[str, float]]:
    """How the score of edge ``slot`` of the node under ``(x, y)`` splits, per head:
    ``qk`` (query·key part), ``edge`` (edge-attribute part), ``score`` (their sum) and
    ``alpha`` (after the softmax over the node's k edges)."""
    edges = block.neighbours_of(x, y)
    if not 0 <= slot < len(edges):
        raise ValueError(f"edge {slot} does not exist (the node has {len(edges)} edges)")
    edge = edges[slot]
    parts = zip(edge["qk_score"], edge["edge_score"], edge["alpha"], strict=True)
    return [
        {"head": h + 1, "qk": qk, "edge": e, "score": qk + e, "alpha": a}
        for h, (qk, e, a) in enumerate(parts)
    ]


def all_heads(analysis: Any, x: float, y: float) -> dict[str, np.ndarray]:
    """For the node under ``(x, y)`` in every block: ``(heads + 1, window, window)`` attention
    over its window, one map per head and the mean last."""
    grid = {}
    for name, block in analysis.blocks.items():
        maps = [block.attention_map(x, y, head) for head in range(block.heads)]
        maps.append(block.attention_map(x, y, None))
        grid[name] = np.stack(maps)
    return grid


# --------------------------------------------------------------------------- figures
def all_heads_figure(grid: Mapping[str, np.ndarray], title: str = "GABIC") -> Any:
    """:func:`all_heads` as a grid of small heat maps: one row per block, one column per head (mean last)."""
    go, make_subplots = plotly()
    names = list(grid)
    columns = next(iter(grid.values())).shape[0] if grid else 1
    heads = [f"h{c + 1}" if c < columns - 1 else "mean" for c in range(columns)]
    titles = heads + [""] * (columns * (len(names) - 1))
    fig = make_subplots(rows=max(1, len(names)), cols=columns, subplot_titles=titles,
                        horizontal_spacing=0.01, vertical_spacing=0.04)  # fmt: skip
    for r, name in enumerate(names, 1):
        for c in range(columns):
            fig.add_trace(go.Heatmap(z=grid[name][c], coloraxis="coloraxis",
                                     hovertemplate=f"{name} {heads[c]}: α %{{z:.3f}}<extra></extra>"),
                          row=r, col=c + 1)  # fmt: skip
            fig.update_xaxes(showticklabels=False, row=r, col=c + 1)
            fig.update_yaxes(showticklabels=False, autorange="reversed", row=r, col=c + 1,
                             title=dict(text=name, font=dict(size=10)) if c == 0 else None)  # fmt: skip
    fig.update_layout(coloraxis=dict(colorscale="Magma", cmin=0, colorbar=dict(title="α", thickness=10)),
                      title=dict(text=f"{title}: every block × head for the clicked point", font=dict(size=13)),
                      height=110 * max(1, len(names)) + 80, margin=dict(l=40, r=10, t=70, b=10))  # fmt: skip
    return fig


def anatomy_figure(rows: Sequence[Mapping[str, float]], edge_label: str = "") -> Any:
    """:func:`score_anatomy` per head: the q·k part and the edge-attribute part of one edge's
    score as stacked bars, the sum as a marker with the resulting α written above."""
    go, _ = plotly()
    heads = [f"h{r['head']}" for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=heads, y=[r["qk"] for r in rows], name="q·k part", marker_color="#4c78a8"))
    fig.add_trace(
        go.Bar(x=heads, y=[r["edge"] for r in rows], name="edge-attribute part", marker_color="#f58518")
    )
    fig.add_trace(go.Scatter(x=heads, y=[r["score"] for r in rows], mode="markers+text", name="score (sum)",
                             text=[f"α={r['alpha']:.2f}" for r in rows], textposition="top center",
                             marker=dict(color="black", symbol="diamond")))  # fmt: skip
    fig.update_layout(barmode="relative", height=320, margin=dict(l=10, r=10, t=40, b=10),
                      title=dict(text=f"Score anatomy {edge_label}", font=dict(size=13)),
                      legend=dict(orientation="h", y=-0.15))  # fmt: skip
    return fig
