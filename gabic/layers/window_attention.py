"""Zou2022's window block: Swin-style multi-head self-attention in shifted windows
with a relative position bias."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .windows import (
    WindowHeads,
    grid_record,
    node_coordinates,
    pad_to_windows,
    window_merge,
    window_partition,
)

#: Score added to pairs of nodes that come from different image regions after the cyclic shift.
MASKED_SCORE = -100.0


def relative_position_index(window: int) -> Tensor:
    """``(n, n)`` index into a ``((2w-1)**2, heads)`` bias table for every node pair."""
    coords = node_coordinates(window)
    offset = coords[:, None, :] - coords[None, :, :] + (window - 1)
    return offset[..., 0] * (2 * window - 1) + offset[..., 1]


def shifted_window_mask(height: int, width: int, window: int, shift: int) -> Tensor:
    """``(num_windows, n, n)`` additive mask: 0 inside a region, :data:`MASKED_SCORE` across
    regions, for a ``height x width`` map cyclically shifted by ``shift``."""
    region = torch.zeros(1, height, width, 1)
    label = 0
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for rows in bands:
        for cols in bands:
            region[:, rows, cols, :] = label
            label += 1
    labels = window_partition(region, window).squeeze(-1)  # (nW, n)
    differs = labels.unsqueeze(1) != labels.unsqueeze(2)
    return torch.zeros(differs.shape).masked_fill(differs, MASKED_SCORE)


class WindowAttention(WindowHeads):
    r"""Multi-head self-attention inside each window with a relative position bias.

    .. math::
        \alpha^h = \operatorname{softmax}\!\left(\frac{Q^h {K^h}^\top}{\sqrt d} + B^h + M\right),
        \qquad x' = W_\text{proj} \big\Vert_h \alpha^h V^h

    ``B`` is looked up in ``relative_position_bias_table`` by
    ``relative_position_index``; ``M`` is the shifted-window mask (or 0).

    Shape: ``(num_windows, n, C) -> (num_windows, n, C)`` with ``n = window**2``.
    """

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__(dim, heads, window)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)
        #: When True, ``last`` keeps the attention weights ``(nW, heads, n, n)`` of the last call.
        self.record = False
        self.last: dict[str, Tensor] | None = None

    def position_bias(self) -> Tensor:
        """``(heads, n, n)`` relative position bias."""
        n = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.heads).permute(2, 0, 1)

    def forward(self, nodes: Tensor, mask: Tensor | None = None) -> Tensor:
        num_windows, n, channels = nodes.shape
        qkv = self.qkv(nodes).view(num_windows, n, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        score = torch.matmul(q * self.scale, k.transpose(-2, -1)) + self.position_bias()
        if mask is not None:
            windows_per_image = mask.shape[0]
            score = score.view(-1, windows_per_image, self.heads, n, n) + mask[None, :, None]
            score = score.view(num_windows, self.heads, n, n)
        alpha = torch.softmax(score, dim=-1)
        if self.record:
            self.last = {"alpha": alpha.detach()}
        out = torch.matmul(alpha, v).transpose(1, 2).reshape(num_windows, n, channels)
        return self.proj(out)


class ShiftedWindowBlock(nn.Module):
    """Zou2022's window block: cyclic shift by half a window, masked window attention,
    shift back, add the input.

    Inputs whose sides are not multiples of the window are zero-padded on the
    bottom/right first (the codec's 64-pixel padding makes this a no-op).

    Shape: ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.shift = window // 2
        self.attn = WindowAttention(dim, heads, window)
        self._mask_cache: dict[tuple[int, int, str], Tensor] = {}
        self.last_grid: dict[str, Any] | None = None

    def attention_mask(self, height: int, width: int, device: torch.device) -> Tensor | None:
        if self.shift == 0:
            return None
        key = (height, width, str(device))
        if key not in self._mask_cache:
            if len(self._mask_cache) > 16:
                self._mask_cache.clear()
            mask = shifted_window_mask(height, width, self.window, self.shift)
            self._mask_cache[key] = mask.to(device)
        return self._mask_cache[key]

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        tokens = pad_to_windows(x.permute(0, 2, 3, 1), self.window)
        padded_h, padded_w = tokens.shape[1:3]
        shifted = torch.roll(tokens, shifts=(-self.shift, -self.shift), dims=(1, 2))
        mask = self.attention_mask(padded_h, padded_w, x.device)
        out = self.attn(window_partition(shifted, self.window), mask)
        if self.attn.record:
            self.last_grid = grid_record(height, width, tokens, shift=self.shift)
        out = window_merge(out, self.window, padded_h, padded_w)
        out = torch.roll(out, shifts=(self.shift, self.shift), dims=(1, 2))[:, :height, :width]
        return x + out.permute(0, 3, 1, 2)
