"""Cutting channel-last feature maps into square windows and back."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WindowHeads(nn.Module):
    """Base of the attention operators over windows of ``window²`` tokens of width ``dim`` split
    into ``heads`` heads: checks the split and keeps ``head_dim`` and the ``1/sqrt(head_dim)`` scale."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} is not divisible by heads={heads}")
        self.dim = dim
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5
        self.window = window

    def split_heads(self, qkv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(num_windows, n, 3 * dim)`` output of a ``qkv`` projection -> ``q, k, v``, each
        ``(num_windows, heads, n, head_dim)`` (``q`` not scaled)."""
        num_windows, n, _ = qkv.shape
        q, k, v = qkv.view(num_windows, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v


def pad_to_windows(x: Tensor, window: int) -> Tensor:
    """Zero-pad a ``(B, H, W, C)`` map on the bottom/right to multiples of ``window``."""
    _, height, width, _ = x.shape
    pad_h = (-height) % window
    pad_w = (-width) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    return x


def window_partition(x: Tensor, window: int) -> Tensor:
    """``(B, H, W, C) -> (B * H/w * W/w, w*w, C)``.

    Windows are in row-major order over the image (batch first), nodes in
    row-major order inside each window (node ``n = row * w + col``).
    """
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window, window, width // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, channels)


def window_merge(windows: Tensor, window: int, height: int, width: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, w*w, C) -> (B, H, W, C)``."""
    channels = windows.shape[-1]
    rows, cols = height // window, width // window
    x = windows.view(-1, rows, cols, window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


def node_coordinates(window: int, device: torch.device | None = None) -> Tensor:
    """``(w*w, 2)`` integer (row, col) of each node inside a window."""
    rows, cols = torch.meshgrid(
        torch.arange(window, device=device), torch.arange(window, device=device), indexing="ij"
    )
    return torch.stack([rows.flatten(), cols.flatten()], dim=-1)


@dataclass(frozen=True)
class WindowGrid:
    """Where a window block's windows lie on its ``height x width`` feature map.

    Attributes:
        height, width: the feature map the block was given.
        padded_height, padded_width: the map zero-padded on the bottom/right to whole windows.
        shift: cyclic shift of the windows (Zou2022's ``window // 2``; 0 for none).
    """

    height: int
    width: int
    padded_height: int
    padded_width: int
    shift: int = 0

    @classmethod
    def of(cls, height: int, width: int, window: int, shift: int = 0) -> WindowGrid:
        """The grid of a ``height x width`` map cut into ``window x window`` windows (as
        :func:`pad_to_windows` pads it)."""
        return cls(height, width, height + (-height) % window, width + (-width) % window, shift)
