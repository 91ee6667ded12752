"""The ``train`` part: one optimizer step as ``python -m gabic train`` takes it (forward under
bfloat16 autocast with ``--bf16``, R-D loss, gradient clipping, Adam, the auxiliary loss and its
optimizer) on a random batch."""

from __future__ import annotations

from typing import Any

import torch
from compressai.losses import RateDistortionLoss

from ..models import SMALL_CONFIG, ModelConfig, build_model
from ..train.trainer import split_parameters
from .inputs import Settings
from .timing import time_call

#: λ of the timed step (the shipped q4's); the time does not depend on it.
LMBDA = 0.0483


def bench_train(
    arch: str, device: str, settings: Settings, config: ModelConfig = SMALL_CONFIG
) -> dict[str, Any]:
    """Time of one training step on ``(train_batch, 3, train_patch, train_patch)``, and images per second;
    with ``settings.train_bf16`` the forward runs under bfloat16 autocast, as ``train --bf16`` does (the
    model keeps its entropy parts in float32 itself)."""
    batch, patch = settings.train_batch, settings.train_patch
    torch.manual_seed(0)
    model = build_model(arch, config).to(device).train()
    net, aux = split_parameters(model)
    optimizer = torch.optim.Adam(net, lr=1e-4)
    aux_optimizer = torch.optim.Adam(aux, lr=1e-3)
    criterion = RateDistortionLoss(lmbda=LMBDA)
    x = torch.rand(batch, 3, patch, patch, generator=torch.Generator().manual_seed(0)).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        aux_optimizer.zero_grad(set_to_none=True)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=settings.train_bf16):
            out = model(x)
        losses = criterion(out, x)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net, 1.0)
        optimizer.step()
        model.aux_loss().backward()
        aux_optimizer.step()

    timing = time_call(step, device, settings.repeats, settings.warmup)
    return {"arch": arch, "device": device, "config": config.to_dict(), "batch": [batch, 3, patch, patch],
            "bf16_transforms": settings.train_bf16, "step": timing,
            "images_per_s": batch / (timing["median_ms"] / 1000)}  # fmt: skip
