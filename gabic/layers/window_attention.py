"""Zou2022's window block: Swin-style multi-head self-attention in shifted windows
with a relative position bias."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .windows import WindowGrid, WindowHeads, node_coordinates, pad_to_windows, window_merge, window_partition

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


@functools.lru_cache(maxsize=16)
def _shared_window_mask(height: int, width: int, window: int, shift: int, device: torch.device) -> Tensor:
    """:func:`shifted_window_mask` on ``device``, made once per size and shared (read only)."""
    return shifted_window_mask(height, width, window, shift).to(device)


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

    def position_bias(self) -> Tensor:
        """``(heads, n, n)`` relative position bias."""
        n = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.heads).permute(2, 0, 1)

    def forward(self, nodes: Tensor, mask: Tensor | None = None) -> Tensor:
        """``nodes`` ``(num_windows, n, C)``, ``mask`` ``(windows per image, n, n)`` or ``None``.

        Eval mode takes PyTorch's fused ``scaled_dot_product_attention`` (:meth:`_fused`), so the
        encoder, the decoder and an eval-mode forward see the same numbers; training mode spells
        it out (:meth:`attention_weights` does too; the two agree to float rounding).
        """
        num_windows, n, channels = nodes.shape
        q, k, v = self.split_heads(self.qkv(nodes))
        if self.training:
            out = torch.matmul(self._weights(q, k, mask), v)
        else:
            out = self._fused(q * self.scale, k, v, mask)
        return self.proj(out.transpose(1, 2).reshape(num_windows, n, channels))

    def _fused(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """``(num_windows, heads, n, d)``: ``softmax(q kᵀ + B + M) v`` by the fused kernel (on a
        2-core CPU about half the time of the spelled-out softmax), ``q`` already scaled.

        Only the windows that the shift wraps around (the last row and column of windows) have a
        mask; the others take ``B`` alone, broadcast over windows, so no ``(windows, heads, n, n)``
        bias is built for them (a 481×321 photo's 1/4-resolution block: 27 of 192 windows).
        """
        # (1, heads, n, n): a 3-d mask sends PyTorch 2.x's CPU attention to its slow unfused path
        bias = self.position_bias().to(q.dtype).contiguous().unsqueeze(0)
        if mask is None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
        windows_per_image = mask.shape[0]
        wrapped = mask.ne(0).flatten(1).any(1).repeat(q.shape[0] // windows_per_image)  # (num_windows,)
        plain, masked = (~wrapped).nonzero().squeeze(1), wrapped.nonzero().squeeze(1)
        out = torch.empty_like(q)
        out[plain] = F.scaled_dot_product_attention(q[plain], k[plain], v[plain], attn_mask=bias, scale=1.0)
        full_bias = bias + mask[masked % windows_per_image].unsqueeze(1).to(q.dtype)  # (masked, heads, n, n)
        out[masked] = F.scaled_dot_product_attention(
            q[masked], k[masked], v[masked], attn_mask=full_bias, scale=1.0
        )
        return out

    @torch.no_grad()
    def attention_weights(self, nodes: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(num_windows, heads, n, n)``: the weights ``alpha`` :meth:`forward` computes for
        ``nodes`` ``(num_windows, n, C)`` and ``mask`` ``(windows per image, n, n)`` (or ``None``);
        each row sums to 1."""
        q, k, _ = self.split_heads(self.qkv(nodes))
        return self._weights(q, k, mask)

    def _weights(self, q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
        num_windows, _, n, _ = q.shape
        score = torch.matmul(q * self.scale, k.transpose(-2, -1)) + self.position_bias()
        if mask is not None:
            windows_per_image = mask.shape[0]
            score = score.view(-1, windows_per_image, self.heads, n, n) + mask[None, :, None]
            score = score.view(num_windows, self.heads, n, n)
        return torch.softmax(score, dim=-1)


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

    def attention_mask(self, height: int, width: int, device: torch.device) -> Tensor | None:
        """``(num_windows, n, n)`` shifted-window mask of a padded ``height x width`` map (``None``
        without a shift)."""
        if self.shift == 0:
            return None
        return _shared_window_mask(height, width, self.window, self.shift, torch.device(device))

    def windows(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(B, C, H, W)`` -> the nodes ``(B * num_windows, window², C)`` of the shifted windows
        (after zero-padding to whole windows) and their mask: what :attr:`attn` is given."""
        tokens = pad_to_windows(x.permute(0, 2, 3, 1), self.window)
        shifted = torch.roll(tokens, shifts=(-self.shift, -self.shift), dims=(1, 2))
        mask = self.attention_mask(tokens.shape[1], tokens.shape[2], x.device)
        return window_partition(shifted, self.window), mask

    def grid(self, height: int, width: int) -> WindowGrid:
        """Where the (shifted) windows lie on a ``height x width`` input."""
        return WindowGrid.of(height, width, self.window, self.shift)

    def explain(self, x: Tensor) -> dict[str, Tensor]:
        """``{"alpha": (B * num_windows, heads, n, n)}``: :meth:`WindowAttention.attention_weights`
        of the shifted windows of ``x``."""
        return {"alpha": self.attn.attention_weights(*self.windows(x))}

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        grid = self.grid(height, width)
        out = self.attn(*self.windows(x))
        out = window_merge(out, self.window, grid.padded_height, grid.padded_width)
        out = torch.roll(out, shifts=(self.shift, self.shift), dims=(1, 2))[:, :height, :width]
        return x + out.permute(0, 3, 1, 2)
