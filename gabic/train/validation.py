"""Validation of a model in training: estimated rate, distortion and RD loss on fixed crops."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..models import ChannelwiseAttentionCodec
from .rates import QUALITY_LAMBDAS


@torch.no_grad()
def validate(model: ChannelwiseAttentionCodec, crops: list[Tensor], lmbda: float,
             device: torch.device, quality: float | None = None) -> dict[str, float]:  # fmt: skip
    """Mean estimated bpp, MSE, PSNR and RD loss ``bpp + λ·255²·MSE`` of ``model`` (eval mode,
    float32) on ``crops`` (each ``(1, 3, s, s)`` in [0, 1])."""
    was_training = model.training
    model.eval()
    bpp_sum = mse_sum = psnr_sum = 0.0
    for crop in crops:
        x = crop.to(device)
        out = model(x, quality)
        pixels = x.shape[-1] * x.shape[-2]
        bits = sum(-torch.log2(v).sum().item() for v in out["likelihoods"].values())
        mse = torch.mean((out["x_hat"].clamp(0, 1) - x) ** 2).item()
        bpp_sum += bits / pixels
        mse_sum += mse
        psnr_sum += 10 * math.log10(1 / max(mse, 1e-12))
    model.train(was_training)
    n = len(crops)
    bpp, mse = bpp_sum / n, mse_sum / n
    return {"bpp": bpp, "mse": mse, "psnr": psnr_sum / n, "loss": bpp + lmbda * 255**2 * mse}


def validate_run(model: ChannelwiseAttentionCodec, crops: list[Tensor], lmbda: float | None,
                 device: torch.device) -> dict[str, Any]:  # fmt: skip
    """:func:`validate` at the run's λ; for a variable-rate model at each trained quality, with
    ``loss`` the geometric mean of their losses (one number that weighs every rate alike)."""
    if not model.config.variable_rate:
        return validate(model, crops, lmbda, device)
    per_quality = {
        q: validate(model, crops, lam, device, quality=float(q)) for q, lam in QUALITY_LAMBDAS.items()
    }
    loss = math.exp(sum(math.log(m["loss"]) for m in per_quality.values()) / len(per_quality))
    return {"loss": loss, "qualities": {str(q): m for q, m in per_quality.items()}}
