"""Does GABIC's kNN graph follow image structure? One number per block and photo.

Each graph block connects every node of a window to its ``k`` nearest neighbours in *feature*
space. :func:`adjacent_edge_share` counts how many of those edges join spatially adjacent cells
and compares that with what a random choice of ``k`` of the window's ``n − 1`` other nodes would
give. Adjacent means the 8-neighbourhood: two cells that share an edge or a corner (Chebyshev
distance 1).

Random baseline, in closed form: a node with ``a`` adjacent cells inside its window, choosing
``k`` of the ``n − 1`` other nodes uniformly, picks ``k · a / (n − 1)`` adjacent ones on
average, a share of ``a / (n − 1)``; the baseline of a set of nodes is that share averaged over
them (each node has ``k`` edges, so averaging over nodes is averaging over edges). In a
``w × w`` window ``a`` is 3 in the corners, 5 on the sides and 8 inside.

Nodes are split by where their cell lies: ``image`` (the cell's centre is in the original
image) and ``padding`` (the codec's padding to a multiple of 64, or a block's padding to whole
windows); the padding says nothing about the photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only attributes are used; the classes' module is being reorganised
    from . import Analysis, BlockInspection

#: The neighbourhood this module calls "adjacent".
ADJACENCY = "8-neighbourhood (cells sharing an edge or a corner)"


def adjacent_cell_counts(window: int) -> np.ndarray:
    """``(n,)`` number of 8-adjacent cells inside a ``window × window`` window, per node
    (``n = row * window + col``)."""
    index = np.arange(window)
    span = np.minimum(index + 1, window - 1) - np.maximum(index - 1, 0) + 1  # cells within ±1 per axis
    return (np.outer(span, span) - 1).reshape(-1)


def random_adjacent_share(window: int, nodes: np.ndarray | None = None) -> float:
    """Expected share of adjacent edges if each node chose its neighbours uniformly among the
    window's ``n − 1`` other nodes, averaged over ``nodes`` (node indices, default all)."""
    n = window * window
    if n < 2:
        raise ValueError("a window needs at least two nodes")
    counts = adjacent_cell_counts(window) / (n - 1)
    return float(counts.mean() if nodes is None else counts[np.asarray(nodes)].mean())


@dataclass(frozen=True)
class AdjacencyShare:
    """Adjacent-edge share of one graph block on one image.

    ``share`` / ``random_share`` / ``edges``: over the nodes whose cell shows the image;
    ``padding_*``: the same over nodes in the padding (``nan`` shares when there are none).
    """

    block: str
    window: int
    k: int
    share: float
    random_share: float
    edges: int
    padding_share: float
    padding_random_share: float
    padding_edges: int

    @property
    def ratio(self) -> float:
        """``share / random_share``: how many times more often than chance the graph joins
        adjacent cells (1 = no preference)."""
        return self.share / self.random_share if self.random_share else math.nan


def node_in_image(block: BlockInspection, height: int, width: int) -> np.ndarray:
    """``(num_windows, n)`` True where the centre of the node's cell lies in the
    ``height × width`` original image."""
    n = block.window * block.window
    windows, nodes = np.meshgrid(np.arange(block.num_windows), np.arange(n), indexing="ij")
    row_s = (windows // block.windows_per_row) * block.window + nodes // block.window
    col_s = (windows % block.windows_per_row) * block.window + nodes % block.window
    rows = (row_s + block.shift) % block.padded_grid_height
    cols = (col_s + block.shift) % block.padded_grid_width
    top, left, stride = block.pad_top, block.pad_left, block.stride
    centre_rows, centre_cols = (rows + 0.5) * stride, (cols + 0.5) * stride
    inside_rows = (centre_rows >= top) & (centre_rows < top + height)
    inside_cols = (centre_cols >= left) & (centre_cols < left + width)
    return inside_rows & inside_cols


def adjacent_edges(neighbours: np.ndarray, window: int) -> np.ndarray:
    """``(num_windows, n, k)`` True where the edge from node ``n`` to ``neighbours[.., n, j]``
    joins 8-adjacent cells of a ``window × window`` window."""
    neighbours = np.asarray(neighbours)
    nodes = np.arange(window * window).reshape(1, -1, 1)
    d_row = np.abs(neighbours // window - nodes // window)
    d_col = np.abs(neighbours % window - nodes % window)
    return np.maximum(d_row, d_col) == 1


def _share(adjacent: np.ndarray, mask: np.ndarray, window: int) -> tuple[float, float, int]:
    if not mask.any():
        return math.nan, math.nan, 0
    node_index = np.broadcast_to(np.arange(window * window), mask.shape)[mask]
    return float(adjacent[mask].mean()), random_adjacent_share(window, node_index), int(adjacent[mask].size)


def adjacent_edge_share(block: BlockInspection, height: int, width: int) -> AdjacencyShare:
    """The share of ``block``'s kNN edges that join 8-adjacent cells, for the nodes of a
    ``height × width`` image and for those in the padding, each with its random baseline."""
    if block.kind != "graph" or block.neighbours is None:
        raise ValueError(f"{block.name}: only GABIC's graph blocks have kNN edges")
    adjacent = adjacent_edges(block.neighbours.cpu().numpy(), block.window)
    inside = node_in_image(block, height, width)
    share, random_share, edges = _share(adjacent, inside, block.window)
    pad_share, pad_random, pad_edges = _share(adjacent, ~inside, block.window)
    return AdjacencyShare(block.name, block.window, int(block.neighbours.shape[-1]), share, random_share,
                          edges, pad_share, pad_random, pad_edges)  # fmt: skip


def adjacency_shares(analysis: Analysis) -> dict[str, AdjacencyShare]:
    """:func:`adjacent_edge_share` of every graph block of a GABIC analysis (made with
    ``inspect_attention=True``), by block name."""
    graphs = {name: block for name, block in analysis.blocks.items() if block.kind == "graph"}
    if not graphs:
        raise ValueError("this analysis has no graph blocks (a GABIC analysis with inspect_attention=True)")
    return {
        name: adjacent_edge_share(block, analysis.height, analysis.width) for name, block in graphs.items()
    }


__all__ = [
    "ADJACENCY", "AdjacencyShare", "adjacency_shares", "adjacent_cell_counts", "adjacent_edge_share",
    "adjacent_edges", "node_in_image", "random_adjacent_share",
]  # fmt: skip
