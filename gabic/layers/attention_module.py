"""The attention-module skeleton shared by GABIC (G-WAM) and Zou2022 (WAM)."""

from __future__ import annotations

from torch import Tensor, nn

from .residual import residual_stack


class AttentionModule(nn.Module):
    r"""Gated residual attention module (paper Fig. 2b).

    .. math::
        \mathrm{out} = x + \mathrm{conv}_a(x) \odot \sigma(\mathrm{conv}_b(x))

    ``conv_a`` is three residual units; ``conv_b`` is
    ``[window_block, 3 residual units, 1x1 conv]``. The ``window_block`` is the
    only part that differs between GABIC (a :class:`GraphWindowBlock`) and
    Zou2022 (a :class:`ShiftedWindowBlock`).

    Shape: ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, channels: int, window_block: nn.Module) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(*residual_stack(channels))
        self.conv_b = nn.Sequential(
            window_block,
            *residual_stack(channels),
            nn.Conv2d(channels, channels, kernel_size=1),
        )

    @property
    def window_block(self) -> nn.Module:
        return self.conv_b[0]

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_a(x) * self.conv_b(x).sigmoid()
