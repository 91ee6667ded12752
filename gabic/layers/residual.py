"""Residual unit shared by both attention modules."""

from __future__ import annotations

from torch import Tensor, nn


class ResidualUnit(nn.Module):
    """Bottleneck residual unit: ``GELU(conv(x) + x)``.

    ``conv`` is ``[1x1 C->C/2, GELU, 3x3 C/2->C/2, GELU, 1x1 C/2->C]``
    (indices 0, 2, 4 carry the weights, as in the reference checkpoints).

    Shape: ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv = nn.Sequential(
            nn.Conv2d(channels, half, kernel_size=1),
            nn.GELU(),
            nn.Conv2d(half, half, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv2d(half, channels, kernel_size=1),
        )
        self.activation = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.conv(x) + x)


def residual_stack(channels: int, depth: int = 3) -> list[nn.Module]:
    """``depth`` residual units of width ``channels`` (a list, to splice into a Sequential)."""
    return [ResidualUnit(channels) for _ in range(depth)]


__all__ = ["ResidualUnit", "residual_stack"]
