"""The ``core`` and ``profile`` parts: the graph core (:class:`gabic.layers.KNNGraphAttention`) on
its dense path against its PyTorch Geometric path, and Zou2022's window attention on the same
windows; timed (``core``) or as :mod:`torch.profiler` tables (``profile``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..layers import KNNGraphAttention
from ..layers.window_attention import WindowAttention
from ..models import ModelConfig, resolve_config
from .inputs import Settings
from .timing import sync, time_pair


def core_inputs(config: ModelConfig, width: int, height: int, batch: int = 1,
                scale: int = 4) -> tuple[torch.Tensor, int, int]:  # fmt: skip
    """Windowed nodes ``(nW, w², C)`` of the block at ``scale`` (4 or 16) for a ``batch`` of images,
    with ``C`` and the window side ``w``."""
    window = config.windows[0] if scale == 4 else config.windows[1]
    channels = config.N if scale == 4 else config.M
    rows = -(-height // 64) * 64 // scale // window
    cols = -(-width // 64) * 64 // scale // window
    generator = torch.Generator().manual_seed(2)
    nodes = torch.randn(batch * rows * cols, window * window, channels, generator=generator)
    return nodes, channels, window


def core_modules(config: ModelConfig, channels: int, window: int, device: str) -> dict[str, torch.nn.Module]:
    """The graph core on its two paths with the same weights, and a window attention of the same size."""
    torch.manual_seed(3)
    dense = KNNGraphAttention(channels, config.heads, window, config.k, "dense")
    pyg = KNNGraphAttention(channels, config.heads, window, config.k, "pyg")
    pyg.load_state_dict(dense.state_dict())
    attention = WindowAttention(channels, config.heads, window)
    return {
        "graph dense": dense.to(device),
        "graph pyg": pyg.to(device),
        "window attention": attention.to(device),
    }


def module_call(module: torch.nn.Module, nodes: torch.Tensor, backward: bool) -> Callable[[], None]:
    """One call of ``module`` on ``nodes``: inference (no grad) or forward + backward of a scalar."""

    def call() -> None:
        if backward:
            module.zero_grad(set_to_none=True)
            module(nodes).square().mean().backward()
        else:
            with torch.no_grad():
                module(nodes)

    return call


def bench_core(config_name: str, device: str, settings: Settings, batch: int = 1, width: int | None = None,
               height: int | None = None, backward: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """Graph core dense vs PyG (and Zou2022's window attention on the same windows) at 1/4 and 1/16,
    with the largest difference of the two graph paths' outputs."""
    config = resolve_config(config_name)
    width, height = width or settings.width, height or settings.height
    repeats, warmup = settings.repeats, settings.warmup
    rows = []
    for scale in (4, 16):
        nodes, channels, window = core_inputs(config, width, height, batch, scale)
        modules = core_modules(config, channels, window, device)
        nodes = nodes.to(device)
        with torch.no_grad():
            dense_out = modules["graph dense"](nodes)
            pyg_out = modules["graph pyg"](nodes)
        difference = float((dense_out - pyg_out).abs().max())
        relative = difference / max(float(pyg_out.abs().max()), 1e-12)
        nodes.requires_grad_(backward)
        calls = {name: module_call(module, nodes, backward) for name, module in modules.items()}
        t_dense, t_pyg = time_pair(calls["graph dense"], calls["graph pyg"], device, repeats, warmup)
        t_window, _ = time_pair(calls["window attention"], lambda: None, device, repeats, warmup)
        rows.append({
            "config": config_name, "device": device, "scale": f"1/{scale}", "batch": batch,
            "nodes_shape": list(nodes.shape), "pass": "forward+backward" if backward else "forward",
            "dense": t_dense, "pyg": t_pyg, "window_attention": t_window,
            "pyg_over_dense": t_pyg["median_ms"] / t_dense["median_ms"],
            "dense_over_window_attention": t_dense["median_ms"] / t_window["median_ms"],
            "max_abs_diff_dense_vs_pyg": difference,
            "max_rel_diff_dense_vs_pyg": relative,
        })  # fmt: skip
    return rows


def profile_core(
    config_name: str, device: str, settings: Settings, verbose: bool = True
) -> list[dict[str, Any]]:
    """torch.profiler tables of the 1/4-scale graph core (dense, PyG) and window attention, at the
    inference shape (forward) and the training shape (forward+backward); printed when ``verbose``."""
    from torch.profiler import ProfilerActivity, profile

    config = resolve_config(config_name)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    shapes = (("inference", 1, settings.width, settings.height, False),
              ("training", settings.train_batch, settings.train_patch, settings.train_patch, True))  # fmt: skip
    calls = max(1, settings.repeats)
    rows = []
    for label, batch, width, height, backward in shapes:
        nodes, channels, window = core_inputs(config, width, height, batch, 4)
        nodes = nodes.to(device).requires_grad_(backward)
        pass_name = "forward+backward" if backward else "forward"
        for name, module in core_modules(config, channels, window, device).items():
            step = module_call(module, nodes, backward)
            step()
            with profile(activities=activities) as prof:
                for _ in range(calls):
                    step()
                sync(device)
            averages = prof.key_averages()
            if verbose:
                print(
                    f"\n===== {config_name} 1/4 {label} {list(nodes.shape)} {name} ({pass_name}, {calls} calls)"
                )
                print(averages.table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40))
            top = sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
            rows.append({"config": config_name, "device": device, "shape": label, "module": name,
                         "pass": pass_name,
                         "self_cpu_total_ms": sum(e.self_cpu_time_total for e in averages) / 1000,
                         "top_ops": [{"op": e.key, "calls": e.count, "self_cpu_ms": e.self_cpu_time_total / 1000}
                                     for e in top]})  # fmt: skip
    return rows
