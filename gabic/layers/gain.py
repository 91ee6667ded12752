"""Gain units: one model for a continuous range of rates (Cui et al., CVPR 2021)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GainUnits(nn.Module):
    r"""Per-channel gain and inverse-gain vectors for ``levels`` trained rates, interpolated
    in between (asymmetric gained compression, Cui et al., "Asymmetric Gained Deep Image
    Compression With Continuous Rate Adaptation", CVPR 2021).

    For a quality :math:`q \in [1, L]` with :math:`q = i + 1 + l`, :math:`0 \le l \le 1`:

    .. math::
        g(q) = g_i^{\,1-l} \, g_{i+1}^{\,l}, \qquad
        g'(q) = {g'_i}^{\,1-l} \, {g'_{i+1}}^{\,l}

    (exponential interpolation; the vectors are stored as logarithms, so they stay positive).
    The encoder scales a latent by :math:`g(q)` before quantisation, the decoder scales the
    dequantised latent by :math:`g'(q)`.

    Shape: ``gains(q)`` returns two ``(1, C, 1, 1)`` tensors.
    """

    def __init__(self, channels: int, levels: int) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError(f"gain units need at least 2 levels, got {levels}")
        self.levels = levels
        self.log_gain = nn.Parameter(torch.zeros(levels, channels))
        self.log_inverse_gain = nn.Parameter(torch.zeros(levels, channels))

    def check_quality(self, quality: float) -> float:
        """``quality`` as a float inside ``[1, levels]`` (raises ``ValueError`` otherwise)."""
        value = float(quality)
        if not math.isfinite(value) or not 1.0 <= value <= self.levels:
            raise ValueError(f"quality must be in 1..{self.levels}, got {quality}")
        return value

    def gains(self, quality: float) -> tuple[Tensor, Tensor]:
        """``(gain, inverse_gain)`` at ``quality``, each ``(1, C, 1, 1)``."""
        value = self.check_quality(quality)
        lower = min(int(math.floor(value)), self.levels - 1) - 1  # 0-based level below
        weight = value - (lower + 1)
        log_gain = (1 - weight) * self.log_gain[lower] + weight * self.log_gain[lower + 1]
        log_inverse = (1 - weight) * self.log_inverse_gain[lower] + weight * self.log_inverse_gain[lower + 1]
        return log_gain.exp().view(1, -1, 1, 1), log_inverse.exp().view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"channels={self.log_gain.shape[1]}, levels={self.levels}"
