"""What one attention module saw: its graph (GABIC) or window attention (Zou2022), and where its
windows lie on the image.

Coordinates: ``(x, y)`` are pixel column and row of the *original* image. A
block's feature grid has one cell per ``stride`` pixels of the padded image
(the codec pads evenly to a multiple of 64), so cell ``(r, c)`` covers pixels
``[r*stride - top, (r+1)*stride - top)`` vertically, same for columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor


@dataclass
class BlockInspection:
    """The graph (GABIC) or window attention (Zou2022) of one attention module.

    Windows are numbered row-major over the (shifted, for Zou2022) feature
    grid, nodes row-major inside a window (``n = row * window + col``).

    Attributes:
        name: ``"encoder 1/4"``, ``"encoder 1/16"``, ``"decoder 1/16"`` or ``"decoder 1/4"``.
        kind: ``"graph"`` (GABIC) or ``"window"`` (Zou2022).
        window: window side in grid cells; ``stride``: pixels per grid cell.
        grid_height, grid_width: feature grid of the padded image.
        padded_grid_height, padded_grid_width: grid padded to whole windows.
        shift: cyclic shift of the windows (``window // 2`` for Zou2022, 0 for GABIC).
        pad_top, pad_left: image padding, in pixels, before the top/left edge.
        heads: attention heads; ``k``: neighbours per node (graph only).
        alpha: graph ``(num_windows, heads, n, k)`` weights per edge;
            window ``(num_windows, heads, n, n)``.
        neighbours: graph ``(num_windows, n, k)`` node indices inside the window.
        qk_score, edge_score: graph ``(num_windows, heads, n, k)``: the two parts
            of every edge's score (``alpha = softmax(qk_score + edge_score)``).
        edge_attribute: graph ``(num_windows, n, k)``, ``((dr) + (dc))^2``.
        feature_distance: graph ``(num_windows, n, k)`` L2 distance of the
            normalised features the kNN was built on.
    """

    name: str
    kind: str
    window: int
    stride: int
    grid_height: int
    grid_width: int
    padded_grid_height: int
    padded_grid_width: int
    shift: int
    pad_top: int
    pad_left: int
    heads: int
    alpha: Tensor
    k: int | None = None
    neighbours: Tensor | None = None
    qk_score: Tensor | None = None
    edge_score: Tensor | None = None
    edge_attribute: Tensor | None = None
    feature_distance: Tensor | None = None

    @property
    def windows_per_row(self) -> int:
        return self.padded_grid_width // self.window

    @property
    def num_windows(self) -> int:
        return self.alpha.shape[0]

    # -------------------------------------------------------------- mapping
    def cell_at(self, x: float, y: float) -> tuple[int, int]:
        """Grid cell ``(row, col)`` under original-image pixel ``(x, y)`` (clamped to the grid)."""
        row = int((y + self.pad_top) // self.stride)
        col = int((x + self.pad_left) // self.stride)
        return min(max(row, 0), self.grid_height - 1), min(max(col, 0), self.grid_width - 1)

    def cell_to_node(self, row: int, col: int) -> tuple[int, int]:
        """Grid cell -> ``(window index, node index)`` (accounts for the cyclic shift)."""
        row_s = (row - self.shift) % self.padded_grid_height
        col_s = (col - self.shift) % self.padded_grid_width
        window = (row_s // self.window) * self.windows_per_row + col_s // self.window
        return window, (row_s % self.window) * self.window + col_s % self.window

    def node_to_cell(self, window: int, node: int) -> tuple[int, int]:
        """``(window, node)`` -> grid cell ``(row, col)`` in the unshifted grid."""
        row_s = (window // self.windows_per_row) * self.window + node // self.window
        col_s = (window % self.windows_per_row) * self.window + node % self.window
        return (row_s + self.shift) % self.padded_grid_height, (col_s + self.shift) % self.padded_grid_width

    def cell_centre(self, row: int, col: int) -> tuple[float, float]:
        """Original-image pixel ``(x, y)`` at the centre of a grid cell."""
        return (col + 0.5) * self.stride - self.pad_left, (row + 0.5) * self.stride - self.pad_top

    def node_at(self, x: float, y: float) -> tuple[int, int]:
        """``(window index, node index)`` under pixel ``(x, y)``."""
        return self.cell_to_node(*self.cell_at(x, y))

    def window_cells(self, window: int) -> list[tuple[int, int]]:
        """Grid cells of a window (row-major node order)."""
        n = self.window * self.window
        return [self.node_to_cell(window, node) for node in range(n)]

    def window_outline(self, window: int) -> list[tuple[float, float, float, float]]:
        """Pixel rectangles ``(x0, y0, x1, y1)`` covering a window. A shifted window that
        wraps around the grid edge is split into several rectangles."""
        cells = self.window_cells(window)
        rows = sorted({r for r, _ in cells})
        cols = sorted({c for _, c in cells})
        rects = []
        for row_run in _runs(rows):
            for col_run in _runs(cols):
                x0, y0 = col_run[0] * self.stride - self.pad_left, row_run[0] * self.stride - self.pad_top
                x1 = (col_run[-1] + 1) * self.stride - self.pad_left
                y1 = (row_run[-1] + 1) * self.stride - self.pad_top
                rects.append((x0, y0, x1, y1))
        return rects

    # ------------------------------------------------------------- queries
    def head_weights(self, alpha: Tensor, head: int | None) -> Tensor:
        """Select one head (0-based) or the mean over heads (``None``) of ``(..., heads, ...)``."""
        return alpha.float().mean(dim=0) if head is None else alpha[head].float()

    def neighbours_of(self, x: float, y: float) -> list[dict[str, Any]]:
        """The graph neighbours of the node under ``(x, y)``, one dict per edge:
        ``cell``, ``centre`` (pixel), ``offset`` (dr, dc), ``feature_distance``,
        ``edge_attribute``, ``alpha`` (per head), ``qk_score``/``edge_score`` (per head)."""
        if self.kind != "graph" or self.neighbours is None:
            raise ValueError(f"{self.name}: neighbours exist only for GABIC's graph blocks")
        window, node = self.node_at(x, y)
        centre_cell = self.node_to_cell(window, node)
        rows = []
        for slot, neighbour in enumerate(self.neighbours[window, node].tolist()):
            cell = self.node_to_cell(window, neighbour)
            rows.append({
                "node": neighbour,
                "cell": cell,
                "centre": self.cell_centre(*cell),
                "offset": (cell[0] - centre_cell[0], cell[1] - centre_cell[1]),
                "feature_distance": float(self.feature_distance[window, node, slot]),
                "edge_attribute": float(self.edge_attribute[window, node, slot]),
                "alpha": self.alpha[window, :, node, slot].float().tolist(),
                "qk_score": self.qk_score[window, :, node, slot].float().tolist(),
                "edge_score": self.edge_score[window, :, node, slot].float().tolist(),
            })  # fmt: skip
        return rows

    def attention_map(self, x: float, y: float, head: int | None = None) -> np.ndarray:
        """``(window, window)`` attention of the node under ``(x, y)`` over its window
        (zeros outside its k neighbours for a graph block), rows/cols in window order."""
        window, node = self.node_at(x, y)
        n = self.window * self.window
        weights = torch.zeros(n)
        if self.kind == "graph":
            alpha = self.head_weights(self.alpha[window, :, node], head)  # (k,)
            weights[self.neighbours[window, node]] = alpha
        else:
            weights = self.head_weights(self.alpha[window, :, node], head)  # (n,)
        return weights.view(self.window, self.window).numpy()


def _runs(values: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return runs


__all__ = ["BlockInspection"]
