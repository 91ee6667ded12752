"""The whole-model parts (paper Table 1): ``model``, ``flops``, ``forward``, ``codec``, ``memory``."""

from __future__ import annotations

from typing import Any

import torch

from ..codec import compress_tensor, decompress_tensor, pad_image
from ..models import resolve_config
from .inputs import Settings, make_image, make_model
from .memory import peak_memory_cpu, peak_memory_cuda
from .timing import time_call

#: The parts this module measures.
MODEL_PARTS = frozenset({"model", "flops", "forward", "codec", "memory"})


def parameter_stats(model: torch.nn.Module) -> dict[str, Any]:
    """Parameter count and the memory of parameters and buffers in MB."""
    params = list(model.parameters())
    count = sum(p.numel() for p in params)
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
    return {"parameters": count, "parameter_mb": param_bytes / 2**20, "buffer_mb": buffer_bytes / 2**20}


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """FLOPs of one forward pass of ``x`` (``FlopCounterMode``: 2 per multiply-add of matmuls and
    convolutions, fused attention counted as its two matmuls; kNN top-k, gathers and softmax are
    not counted)."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def attention(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return sdpa_flop_count(query, key, value)

    # PyTorch counts its CUDA attention kernels but not the CPU one (it would count as 0)
    cpu_attention = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: attention}
    counter = FlopCounterMode(display=False, custom_mapping=cpu_attention)
    with torch.no_grad(), counter:
        model(x)
    total = counter.get_total_flops()
    return {"gflops": total / 1e9, "gmacs": total / 2e9}


def bench_model_level(arch: str, config_name: str, device: str, settings: Settings,
                      parts: set[str]) -> dict[str, Any]:  # fmt: skip
    """One row of Table 1: the ``parts`` (of :data:`MODEL_PARTS`) for one model on a random image."""
    model = make_model(arch, resolve_config(config_name), device)
    x = make_image(settings.width, settings.height, device)
    padded, _ = pad_image(x)
    row: dict[str, Any] = {"arch": arch, "config": config_name, "device": device}
    if "model" in parts:
        row.update(parameter_stats(model))
    if "flops" in parts:
        row.update(count_flops(model, padded))
    if "forward" in parts:
        with torch.no_grad():
            row["forward"] = time_call(lambda: model(padded), device, settings.repeats, settings.warmup)
    if "codec" in parts:
        data = compress_tensor(model, x)
        row["bytes"] = len(data)
        row["encode"] = time_call(
            lambda: compress_tensor(model, x), device, settings.repeats, settings.warmup
        )
        row["decode"] = time_call(lambda: decompress_tensor(data, model), device, settings.repeats,
                                  settings.warmup)  # fmt: skip
    if "memory" in parts:
        if torch.device(device).type == "cuda":
            row["peak_memory"] = peak_memory_cuda(model, x)
        else:
            row["peak_memory"] = peak_memory_cpu(arch, config_name, settings.width, settings.height)
    return row
