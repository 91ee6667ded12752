"""Everything the app and the notebooks draw, from one pass of the real codec.

:func:`analyze` compresses an image (real rANS bitstream), decodes it, and
records on the way the likelihood of every latent element and, in each of the
four attention modules, the kNN graph and attention weights (GABIC) or the full
window attention (Zou2022).

Coordinates: ``(x, y)`` are pixel column and row of the *original* image. A
block's feature grid has one cell per ``stride`` pixels of the padded image
(the codec pads evenly to a multiple of 64), so cell ``(r, c)`` covers pixels
``[r*stride - top, (r+1)*stride - top)`` vertically, same for columns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from compressai.ops import compute_padding
from PIL import Image
from torch import Tensor

from .. import codec
from ..codec.images import image_to_tensor, load_image, tensor_to_image
from ..layers import GraphWindowBlock, ShiftedWindowBlock
from ..metrics import msssim, psnr
from ..models import BLOCK_STRIDES, GABIC, ChannelwiseAttentionCodec


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


@dataclass
class Analysis:
    """One image through one model: reconstruction, rates, bit maps and attention.

    Bit maps: ``y_bits`` ``(h, w)`` and ``z_bits`` ``(h/4, w/4)`` are the
    exact ``-log2`` likelihoods summed over channels at latent resolution (of
    the padded image); ``bits_per_pixel_map`` (and its y/z parts) spread them
    over the original image's pixels; they sum to ``bits_estimated``.
    """

    model_id: str
    arch: str
    quality: int
    k: int | None
    trained_k: int | None
    width: int
    height: int
    original: Image.Image
    reconstruction: Image.Image
    data: bytes
    bpp: float
    bpp_estimated: float
    bits_estimated: float
    psnr: float
    ms_ssim: float
    encode_ms: float
    decode_ms: float
    y_bits: np.ndarray
    z_bits: np.ndarray
    y_bits_per_pixel_map: np.ndarray
    z_bits_per_pixel_map: np.ndarray
    blocks: dict[str, BlockInspection] = field(default_factory=dict)

    @property
    def bits_per_pixel_map(self) -> np.ndarray:
        """``(H, W)`` bits spent per image pixel (y and z); its mean is ``bpp_estimated``."""
        return self.y_bits_per_pixel_map + self.z_bits_per_pixel_map

    def metrics(self) -> dict[str, float]:
        return {"bpp": self.bpp, "bpp_estimated": self.bpp_estimated, "psnr": self.psnr,
                "ms_ssim": self.ms_ssim, "encode_ms": self.encode_ms, "decode_ms": self.decode_ms}  # fmt: skip


def spread_bits(bits: np.ndarray, stride: int, height: int, width: int, pad_top: int,
                pad_left: int) -> np.ndarray:  # fmt: skip
    """Spread per-cell bits ``(h, w)`` (cells of ``stride`` px on the padded image) evenly over
    the original image's ``(height, width)`` pixels. Cells wholly in the padding give
    their bits to the nearest cell inside the image, so the total is preserved."""
    rows = (np.arange(height) + pad_top) // stride
    cols = (np.arange(width) + pad_left) // stride
    first_r, last_r = rows[0], rows[-1]
    first_c, last_c = cols[0], cols[-1]
    folded = np.zeros((last_r - first_r + 1, last_c - first_c + 1), dtype=np.float64)
    r_idx = np.clip(np.arange(bits.shape[0]), first_r, last_r) - first_r
    c_idx = np.clip(np.arange(bits.shape[1]), first_c, last_c) - first_c
    np.add.at(folded, (r_idx[:, None], c_idx[None, :]), bits.astype(np.float64))
    counts_r = np.bincount(rows - first_r, minlength=folded.shape[0])
    counts_c = np.bincount(cols - first_c, minlength=folded.shape[1])
    per_pixel = folded / np.outer(counts_r, counts_c)
    return per_pixel[(rows - first_r)[:, None], (cols - first_c)[None, :]].astype(np.float32)


def _set_recording(model: ChannelwiseAttentionCodec, on: bool) -> None:
    for _, block in model.window_blocks():
        operator = block.conv if isinstance(block, GraphWindowBlock) else block.attn
        operator.record = on
        if not on:
            operator.last = None


def _collect_block(name: str, block: Any, pad: tuple[int, int, int, int], half: bool) -> BlockInspection:
    grid = block.last_grid
    common = dict(
        name=name, window=block.window, stride=BLOCK_STRIDES[name],
        grid_height=grid["height"], grid_width=grid["width"],
        padded_grid_height=grid["padded_height"], padded_grid_width=grid["padded_width"],
        pad_top=pad[2], pad_left=pad[0],
    )  # fmt: skip
    if isinstance(block, GraphWindowBlock):
        last = block.conv.last
        return BlockInspection(kind="graph", shift=0, heads=block.conv.heads, k=block.conv.k,
                               alpha=last["alpha"], neighbours=last["neighbours"],
                               qk_score=last["qk_score"], edge_score=last["edge_score"],
                               edge_attribute=last["edge_attribute"],
                               feature_distance=last["feature_distance"], **common)  # fmt: skip
    assert isinstance(block, ShiftedWindowBlock)
    alpha = block.attn.last["alpha"]
    return BlockInspection(kind="window", shift=block.shift, heads=block.attn.heads,
                           alpha=alpha.half() if half else alpha, **common)  # fmt: skip


def analyze(model: ChannelwiseAttentionCodec, image: object, k: int | None = None,
            inspect_attention: bool = True) -> Analysis:  # fmt: skip
    """Compress and decompress ``image`` with ``model`` and record everything to draw.

    Args:
        model: an eval-mode codec (e.g. from :func:`gabic.zoo.load`).
        image: PIL image, path, bytes or array (see :func:`gabic.images.load_image`).
        k: for GABIC, neighbours per node to use for this analysis (default:
            the model's current k). The container records it.
        inspect_attention: record graphs/attention of the four modules.

    Returns:
        :class:`Analysis`. ``bpp`` is from the real bitstream; ``bpp_estimated``
        and the bit maps from the likelihoods of the same pass.
    """
    original = load_image(image)
    x = image_to_tensor(original)
    height, width = x.shape[-2:]
    is_graph = isinstance(model, GABIC)
    previous_k = model.k if is_graph else None
    if k is not None:
        if not is_graph:
            raise ValueError("k applies to GABIC only")
        model.set_k(k)
    try:
        _set_recording(model, inspect_attention)
        start = time.perf_counter()
        data, likelihoods = codec.encode_tensor(model, x, with_likelihoods=True)
        encode_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        x_hat = codec.decompress_tensor(data, model)
        decode_ms = (time.perf_counter() - start) * 1000
        pad, _ = compute_padding(height, width, min_div=codec.PAD_MULTIPLE)
        half = next(model.parameters()).device.type == "cpu"
        blocks = {
            name: _collect_block(name, block, pad, half) for name, block in model.window_blocks()
        } if inspect_attention else {}  # fmt: skip
    finally:
        _set_recording(model, False)
        if previous_k is not None:
            model.set_k(previous_k)
    assert likelihoods is not None
    y_bits = (-torch.log2(likelihoods["y"][0])).sum(0).cpu().numpy()
    z_bits = (-torch.log2(likelihoods["z"][0])).sum(0).cpu().numpy()
    y_map = spread_bits(y_bits, 16, height, width, pad[2], pad[0])
    z_map = spread_bits(z_bits, 64, height, width, pad[2], pad[0])
    bits = float(y_bits.sum(dtype=np.float64) + z_bits.sum(dtype=np.float64))
    x = x.to(x_hat.device)
    model_id, quality = codec.model_identity(model)
    return Analysis(
        model_id=model_id, arch=model.arch, quality=quality,
        k=(k if k is not None else previous_k) if is_graph else None,
        trained_k=model.config.k if is_graph else None,
        width=width, height=height, original=original, reconstruction=tensor_to_image(x_hat),
        data=data, bpp=len(data) * 8 / (height * width),
        bpp_estimated=bits / (height * width), bits_estimated=bits,
        psnr=psnr(x, x_hat), ms_ssim=msssim(x, x_hat),
        encode_ms=encode_ms, decode_ms=decode_ms, y_bits=y_bits, z_bits=z_bits,
        y_bits_per_pixel_map=y_map, z_bits_per_pixel_map=z_map, blocks=blocks,
    )  # fmt: skip


def bit_difference(a: Analysis, b: Analysis) -> np.ndarray:
    """``(H, W)`` bits per pixel of ``a`` minus those of ``b`` (paper Fig. 5: red where
    ``a`` spends more). Both analyses must be of the same image."""
    if (a.width, a.height) != (b.width, b.height):
        raise ValueError("the two analyses are of images of different sizes")
    return a.bits_per_pixel_map - b.bits_per_pixel_map


__all__ = ["Analysis", "BlockInspection", "analyze", "bit_difference", "spread_bits"]
