"""The latent cells a container codes (:func:`gabic.codec.coded_cells`): what the models do with
the others."""

from __future__ import annotations

import torch
from torch import Tensor


def fill_uncoded_cells(y_hat: Tensor, coded_cells: Tensor) -> Tensor:
    """``(B, C, h, w)`` with every cell outside ``coded_cells`` (``(h, w)`` bool, a rectangle)
    set to the nearest coded cell's value (replicate padding of the coded rectangle)."""
    rows = torch.nonzero(coded_cells.any(1)).flatten()
    cols = torch.nonzero(coded_cells.any(0)).flatten()
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    inner = y_hat[..., r0:r1, c0:c1]
    h, w = coded_cells.shape
    return torch.nn.functional.pad(inner, (c0, w - c1, r0, h - r1), mode="replicate").contiguous()


def coded_elements(values: Tensor, coded_cells: Tensor | None) -> Tensor:
    """``(C, h, w)`` -> the elements of the coded cells, ``(C, n)`` in raster order (all if None)."""
    return values if coded_cells is None else values[:, coded_cells]
