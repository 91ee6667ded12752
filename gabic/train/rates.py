"""The paper's four rate points, and the qualities a variable-rate run trains at."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from ..models import ChannelwiseAttentionCodec
from ..models.lambdas import QUALITY_LAMBDAS, lambda_at

__all__ = ["QUALITY_LAMBDAS", "card_quality", "draw_quality", "lambda_at", "quality_at_step", "spread_gains"]


def draw_quality(generator: torch.Generator, levels: int) -> float:
    """A training quality: one of the ``levels`` trained points half of the time, else uniform
    in ``[1, levels]`` (so the interpolated gains are trained too)."""
    if bool(torch.rand(1, generator=generator) < 0.5):
        return float(int(torch.randint(1, levels + 1, (1,), generator=generator)))
    return 1.0 + float(torch.rand(1, generator=generator)) * (levels - 1)


def quality_at_step(seed: int, rank: int, step: int, levels: int) -> float:
    """The quality process ``rank`` trains at in optimizer step ``step`` (0-based): a
    :func:`draw_quality` from a generator seeded by ``(seed, rank, step)`` alone, so a resumed
    run draws the same qualities without saving any generator state."""
    seed_words = np.random.SeedSequence([seed, rank, step]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator().manual_seed(int(seed_words[0]) << 32 | int(seed_words[1]))
    return draw_quality(generator, levels)


def spread_gains(model: ChannelwiseAttentionCodec, reference_quality: int) -> None:
    """Start the gain units of a variable-rate model warm-started from a one-rate model trained
    at ``reference_quality``: gain 1 there, and ``sqrt(λ_q / λ_ref)`` at the other levels (the
    quantiser step that high-rate theory gives for λ), inverse gains the reciprocal."""
    reference = QUALITY_LAMBDAS[reference_quality]
    with torch.no_grad():
        for level in range(model.config.rate_levels):
            log_gain = 0.5 * math.log(QUALITY_LAMBDAS[level + 1] / reference)
            model.y_gain.log_gain[level].fill_(log_gain)
            model.y_gain.log_inverse_gain[level].fill_(-log_gain)


def card_quality(weights: str | os.PathLike) -> int | None:
    """The quality named in the model card beside a shipped weights file, or ``None``."""
    card = Path(weights).with_suffix(".json")
    if card.is_file():
        quality = json.loads(card.read_text()).get("quality")
        return int(quality) if quality in QUALITY_LAMBDAS else None
    return None
