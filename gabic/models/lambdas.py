"""The λ of the paper's four qualities: what a quality trades between rate and distortion."""

from __future__ import annotations

import math

#: λ of the paper's four qualities (loss = bpp + λ · 255² · MSE, images in [0, 1]).
QUALITY_LAMBDAS = {1: 0.0067, 2: 0.0130, 3: 0.025, 4: 0.0483}


def lambda_at(quality: float) -> float:
    """λ of a continuous quality in ``[1, 4]``: the paper's four λ, log-linear in between
    (the interpolation the gain units use for their vectors)."""
    if not 1.0 <= quality <= 4.0:
        raise ValueError(f"quality must be in 1..4, got {quality}")
    lower = min(int(math.floor(quality)), 3)
    weight = quality - lower
    low, high = math.log(QUALITY_LAMBDAS[lower]), math.log(QUALITY_LAMBDAS[lower + 1])
    return math.exp((1 - weight) * low + weight * high)
