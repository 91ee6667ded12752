"""The ``blocks`` part: each attention module (G-WAM / WAM) and each window block alone, GABIC
against Zou2022, at the feature-map size the image gives it."""

from __future__ import annotations

from typing import Any

import torch

from ..codec import PAD_MULTIPLE
from ..models import BLOCK_STRIDES, ModelConfig, resolve_config
from .inputs import ARCHS, Settings, make_model
from .timing import time_pair


def block_inputs(config: ModelConfig, width: int, height: int, device: str) -> dict[str, torch.Tensor]:
    """Random feature maps ``(1, C, H/stride, W/stride)`` of the padded image, per attention module."""
    padded_w = -(-width // PAD_MULTIPLE) * PAD_MULTIPLE
    padded_h = -(-height // PAD_MULTIPLE) * PAD_MULTIPLE
    inputs = {}
    generator = torch.Generator().manual_seed(1)
    for name, stride in BLOCK_STRIDES.items():
        channels = config.N if stride == 4 else config.M
        shape = (1, channels, padded_h // stride, padded_w // stride)
        inputs[name] = torch.randn(shape, generator=generator).to(device)
    return inputs


def bench_blocks(config_name: str, device: str, settings: Settings) -> list[dict[str, Any]]:
    """Each attention module and its window block, GABIC vs Zou2022, interleaved."""
    config = resolve_config(config_name)
    models = {arch: make_model(arch, config, device) for arch in ARCHS}
    inputs = block_inputs(config, settings.width, settings.height, device)
    modules = {arch: dict(model.attention_modules()) for arch, model in models.items()}
    rows = []
    with torch.no_grad():
        for name, x in inputs.items():
            for part, pick in (("module", lambda m: m), ("window block", lambda m: m.window_block)):
                g = pick(modules["gabic"][name])
                z = pick(modules["zou2022"][name])
                tg, tz = time_pair(lambda g=g, x=x: g(x), lambda z=z, x=x: z(x), device, settings.repeats,
                                   settings.warmup)  # fmt: skip
                rows.append({"config": config_name, "device": device, "block": name, "part": part,
                             "shape": list(x.shape), "gabic": tg, "zou2022": tz,
                             "ratio": tg["median_ms"] / tz["median_ms"]})  # fmt: skip
    return rows
