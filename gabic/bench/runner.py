"""Benchmark GABIC against Zou2022: paper Table 1 by a command, plus per-block,
app-level and training-step costs.

Parts (``--only a,b``; default all):

- ``model``: parameters and parameter memory (no timing).
- ``flops``: FLOPs of one forward pass (``torch.utils.flop_counter.FlopCounterMode``;
  counts matmuls/convolutions as 2 FLOPs per multiply-add; kNN top-k, gathers
  and softmax are not counted).
- ``forward``: eval-mode forward ms.
- ``codec``: encode and decode ms of real bitstreams (:mod:`gabic.codec`).
- ``memory``: peak memory of forward / encode / decode. CPU: resident-set
  high-water mark (``VmHWM`` after resetting it through ``/proc/self/clear_refs``)
  minus the resident set before the call, in a fresh subprocess whose large
  allocations are ``mmap``-ed so freed memory leaves the RSS. CUDA:
  ``torch.cuda.max_memory_allocated`` minus the memory before the call.
- ``blocks``: each attention module (G-WAM / WAM) and each window block alone,
  at the feature-map size the image gives it.
- ``core``: the graph core (:class:`gabic.layers.KNNGraphAttention`) on its
  dense path vs its PyTorch Geometric path, and Zou2022's window attention on
  the same windows; outputs of the two graph paths are compared.
- ``app``: full :func:`gabic.inspect.analyze` of a 768×512 photo with both
  shipped-configuration models (shipped weights when present, otherwise
  random weights of the same configuration), and a cached quality change
  when :mod:`gabic.explore` exists.
- ``train``: one optimizer step of the shipped configuration (batch 8×128²,
  R-D loss, gradient clipping, Adam, auxiliary loss and its optimizer).
- ``profile`` (only when asked for): :mod:`torch.profiler` tables of the graph
  core (dense and PyG paths) and of the window attention at the 1/4-scale
  block, inference shape (forward) and training shape (forward+backward).

``--compare BEFORE.json AFTER.json`` prints the CPU-time ratios of two reports.

Times are medians of ``--repeats`` runs after ``--warmup`` runs; CUDA runs
are synchronised.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..models import PAPER_CONFIG, SMALL_CONFIG, ModelConfig, build_model
from ..records import write_json

PARTS = ("model", "flops", "forward", "codec", "memory", "blocks", "core", "app", "train", "profile")
#: Parts run when ``--only`` is not given (``profile`` prints long tables: ask for it).
DEFAULT_PARTS = PARTS[:-1]
ARCHS = ("gabic", "zou2022")
CONFIGS: dict[str, ModelConfig] = {"paper": PAPER_CONFIG, "small": SMALL_CONFIG}
#: The 768×512 photo used for the app latency when the Kodak images are present.
KODAK_PHOTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak" / "kodim23.png"


def resolve_config(name: str) -> ModelConfig:
    """``"paper"``, ``"small"`` (the shipped one) or a JSON file of :class:`ModelConfig` fields."""
    if name in CONFIGS:
        return CONFIGS[name]
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        return ModelConfig.from_dict(json.loads(path.read_text()))
    raise ValueError(f"unknown config {name!r}; use paper, small or a JSON file of ModelConfig fields")


# ---------------------------------------------------------------- timing helpers
def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], device: torch.device | str = "cpu", repeats: int = 5,
              warmup: int = 1) -> dict[str, Any]:  # fmt: skip
    """Median (and all) wall times in ms of ``fn()``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times, cpu = [], []
    for _ in range(max(1, repeats)):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return _timing(times, cpu)


def _timing(times: list[float], cpu: list[float]) -> dict[str, Any]:
    """Wall-clock median/min and the median CPU time of this process (all its threads).

    On a loaded machine the wall time includes waiting for a core; the CPU time
    does not, so ratios of CPU times are the steadier comparison there.
    """
    return {"median_ms": statistics.median(times), "min_ms": min(times), "cpu_median_ms": statistics.median(cpu),
            "runs_ms": times}  # fmt: skip


def time_pair(fn_a: Callable[[], Any], fn_b: Callable[[], Any], device: torch.device | str = "cpu",
              repeats: int = 5, warmup: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Like :func:`time_call` for two functions, interleaved (a, b, a, b, ...) so that a
    changing background load hits both alike."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    sync(device)
    times: tuple[list[float], list[float]] = ([], [])
    cpu: tuple[list[float], list[float]] = ([], [])
    for _ in range(max(1, repeats)):
        for fn, wall_bucket, cpu_bucket in ((fn_a, times[0], cpu[0]), (fn_b, times[1], cpu[1])):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            sync(device)
            wall_bucket.append((time.perf_counter() - start) * 1000)
            cpu_bucket.append((time.process_time() - start_cpu) * 1000)
    return _timing(times[0], cpu[0]), _timing(times[1], cpu[1])


# ---------------------------------------------------------------- machine
def machine_description(devices: list[str]) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "devices": devices,
    }
    with contextlib.suppress(OSError):
        info["load_average"] = list(os.getloadavg())
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


# ---------------------------------------------------------------- models and inputs
def make_model(arch: str, config: ModelConfig, device: str, seed: int = 0) -> torch.nn.Module:
    """Random-weight eval-mode model with entropy tables built (timings do not depend on training)."""
    torch.manual_seed(seed)
    model = build_model(arch, config).to(device).eval()
    model.update(force=True)
    return model


def make_image(width: int, height: int, device: str = "cpu", seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, height, width, generator=generator).to(device)


def parameter_stats(model: torch.nn.Module) -> dict[str, Any]:
    params = list(model.parameters())
    count = sum(p.numel() for p in params)
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
    return {"parameters": count, "parameter_mb": param_bytes / 2**20, "buffer_mb": buffer_bytes / 2**20}


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    total = counter.get_total_flops()
    return {"gflops": total / 1e9, "gmacs": total / 2e9}


# ---------------------------------------------------------------- memory
_MEMORY_PROBE = """
import json, sys, gc
import torch
from gabic.bench import runner as bench
from gabic.codec import compress_tensor, decompress_tensor, pad_image
arch, config, width, height, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
model = bench.make_model(arch, bench.resolve_config(config), "cpu")
x = bench.make_image(width, height)
padded, _ = pad_image(x)
def peak(fn):
    gc.collect()
    base = bench.reset_peak_rss()
    out = fn()
    return out, (bench.read_status_kb("VmHWM") - base) / 1024
with torch.no_grad():
    _, forward = peak(lambda: model(padded))
data, encode = peak(lambda: compress_tensor(model, x))
_, decode = peak(lambda: decompress_tensor(data, model))
print(json.dumps({"forward_mb": forward, "encode_mb": encode, "decode_mb": decode}))
"""


def read_status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset the resident-set high-water mark (Linux ``clear_refs`` 5); returns the current RSS in kB."""
    Path("/proc/self/clear_refs").write_text("5")
    return read_status_kb("VmRSS")


def peak_memory_cpu(arch: str, config: str, width: int, height: int) -> dict[str, Any]:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-c", _MEMORY_PROBE, arch, config, str(width), str(height),
               str(torch.get_num_threads())]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "method": "VmHWM delta, fresh process"}


def peak_memory_cuda(model: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    from ..codec import compress_tensor, decompress_tensor, pad_image

    device = x.device
    padded, _ = pad_image(x)
    result = {}

    def peak(fn: Callable[[], Any]) -> tuple[Any, float]:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        torch.cuda.synchronize(device)
        return out, (torch.cuda.max_memory_allocated(device) - base) / 2**20

    with torch.no_grad():
        _, result["forward_mb"] = peak(lambda: model(padded))
    data, result["encode_mb"] = peak(lambda: compress_tensor(model, x))
    _, result["decode_mb"] = peak(lambda: decompress_tensor(data, model))
    result["method"] = "torch.cuda.max_memory_allocated delta"
    return result


# ---------------------------------------------------------------- parts
def bench_model_level(arch: str, config_name: str, device: str, args: argparse.Namespace,
                      parts: set[str]) -> dict[str, Any]:  # fmt: skip
    from ..codec import compress_tensor, decompress_tensor, pad_image

    config = resolve_config(config_name)
    model = make_model(arch, config, device)
    x = make_image(args.width, args.height, device)
    padded, _ = pad_image(x)
    row: dict[str, Any] = {"arch": arch, "config": config_name, "device": device}
    if "model" in parts:
        row.update(parameter_stats(model))
    if "flops" in parts:
        row.update(count_flops(model, padded))
    if "forward" in parts:
        with torch.no_grad():
            row["forward"] = time_call(lambda: model(padded), device, args.repeats, args.warmup)
    if "codec" in parts:
        data = compress_tensor(model, x)
        row["bytes"] = len(data)
        row["encode"] = time_call(lambda: compress_tensor(model, x), device, args.repeats, args.warmup)
        row["decode"] = time_call(lambda: decompress_tensor(data, model), device, args.repeats, args.warmup)
    if "memory" in parts:
        if torch.device(device).type == "cuda":
            row["peak_memory"] = peak_memory_cuda(model, x)
        else:
            row["peak_memory"] = peak_memory_cpu(arch, config_name, args.width, args.height)
    return row


def _block_inputs(config: ModelConfig, width: int, height: int, device: str) -> dict[str, torch.Tensor]:
    from ..codec import PAD_MULTIPLE
    from ..models import BLOCK_STRIDES

    padded_w = -(-width // PAD_MULTIPLE) * PAD_MULTIPLE
    padded_h = -(-height // PAD_MULTIPLE) * PAD_MULTIPLE
    inputs = {}
    generator = torch.Generator().manual_seed(1)
    for name, stride in BLOCK_STRIDES.items():
        channels = config.N if stride == 4 else config.M
        shape = (1, channels, padded_h // stride, padded_w // stride)
        inputs[name] = torch.randn(shape, generator=generator).to(device)
    return inputs


def bench_blocks(config_name: str, device: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each attention module and its window block, GABIC vs Zou2022, interleaved."""
    config = resolve_config(config_name)
    models = {arch: make_model(arch, config, device) for arch in ARCHS}
    inputs = _block_inputs(config, args.width, args.height, device)
    modules = {arch: dict(model.attention_modules()) for arch, model in models.items()}
    rows = []
    with torch.no_grad():
        for name, x in inputs.items():
            for part, pick in (("module", lambda m: m), ("window block", lambda m: m.window_block)):
                g = pick(modules["gabic"][name])
                z = pick(modules["zou2022"][name])
                tg, tz = time_pair(lambda g=g, x=x: g(x), lambda z=z, x=x: z(x), device, args.repeats,
                                   args.warmup)  # fmt: skip
                rows.append({"config": config_name, "device": device, "block": name, "part": part,
                             "shape": list(x.shape), "gabic": tg, "zou2022": tz,
                             "ratio": tg["median_ms"] / tz["median_ms"]})  # fmt: skip
    return rows


def core_inputs(config: ModelConfig, width: int, height: int, batch: int = 1,
                scale: int = 4) -> tuple[torch.Tensor, int, int]:  # fmt: skip
    """Windowed nodes ``(nW, w², C)`` of the block at ``scale`` (4 or 16) for a ``batch`` of images."""
    window = config.windows[0] if scale == 4 else config.windows[1]
    channels = config.N if scale == 4 else config.M
    rows = -(-height // 64) * 64 // scale // window
    cols = -(-width // 64) * 64 // scale // window
    generator = torch.Generator().manual_seed(2)
    nodes = torch.randn(batch * rows * cols, window * window, channels, generator=generator)
    return nodes, channels, window


def bench_core(config_name: str, device: str, args: argparse.Namespace, batch: int = 1, width: int | None = None,
               height: int | None = None, backward: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """Graph core dense vs PyG (and Zou2022's window attention on the same windows)."""
    from ..layers import KNNGraphAttention
    from ..layers.window_attention import WindowAttention

    config = resolve_config(config_name)
    width, height = width or args.width, height or args.height
    rows = []
    for scale in (4, 16):
        nodes, channels, window = core_inputs(config, width, height, batch, scale)
        nodes = nodes.to(device)
        torch.manual_seed(3)
        graph = KNNGraphAttention(channels, config.heads, window, config.k).to(device)
        attention = WindowAttention(channels, config.heads, window).to(device)
        nodes.requires_grad_(backward)

        def run(module: torch.nn.Module, implementation: str | None = None,
                nodes: torch.Tensor = nodes) -> Callable[[], Any]:  # fmt: skip
            def call() -> Any:
                if implementation is not None:
                    module.implementation = implementation
                if backward:
                    module.zero_grad(set_to_none=True)
                    module(nodes).square().mean().backward()
                    return None
                with torch.no_grad():
                    return module(nodes)

            return call

        with torch.no_grad():
            graph.implementation = "dense"
            dense_out = graph(nodes)
            graph.implementation = "pyg"
            pyg_out = graph(nodes)
        difference = float((dense_out - pyg_out).abs().max())
        relative = difference / max(float(pyg_out.abs().max()), 1e-12)
        t_dense, t_pyg = time_pair(run(graph, "dense"), run(graph, "pyg"), device, args.repeats, args.warmup)
        t_window, _ = time_pair(run(attention), lambda: None, device, args.repeats, args.warmup)
        graph.implementation = "dense"
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


def profile_core(config_name: str, device: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """torch.profiler tables of the 1/4-scale graph core (dense, PyG) and window attention."""
    from torch.profiler import ProfilerActivity, profile

    from ..layers import KNNGraphAttention
    from ..layers.window_attention import WindowAttention

    config = resolve_config(config_name)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    shapes = (("inference", 1, args.width, args.height, False),
              ("training", args.train_batch, args.train_patch, args.train_patch, True))  # fmt: skip
    rows = []
    for label, batch, width, height, backward in shapes:
        nodes, channels, window = core_inputs(config, width, height, batch, 4)
        nodes = nodes.to(device).requires_grad_(backward)
        torch.manual_seed(3)
        modules = {"graph dense": KNNGraphAttention(channels, config.heads, window, config.k, "dense"),
                   "graph pyg": KNNGraphAttention(channels, config.heads, window, config.k, "pyg"),
                   "window attention": WindowAttention(channels, config.heads, window)}  # fmt: skip
        for name, module in modules.items():
            module.to(device)

            def step(
                module: torch.nn.Module = module, nodes: torch.Tensor = nodes, backward: bool = backward
            ) -> None:
                if backward:
                    module.zero_grad(set_to_none=True)
                    module(nodes).square().mean().backward()
                else:
                    with torch.no_grad():
                        module(nodes)

            step()
            with profile(activities=activities) as prof:
                for _ in range(max(1, args.repeats)):
                    step()
                sync(device)
            averages = prof.key_averages()
            title = (f"{config_name} 1/4 {label} {list(nodes.shape)} {name} "
                     f"({'forward+backward' if backward else 'forward'}, {max(1, args.repeats)} calls)")  # fmt: skip
            print(f"\n===== {title}")
            print(averages.table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40))
            top = sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
            rows.append({"config": config_name, "device": device, "shape": label, "module": name,
                         "pass": "forward+backward" if backward else "forward",
                         "self_cpu_total_ms": sum(e.self_cpu_time_total for e in averages) / 1000,
                         "top_ops": [{"op": e.key, "calls": e.count, "self_cpu_ms": e.self_cpu_time_total / 1000}
                                     for e in top]})  # fmt: skip
    return rows


def compare_reports(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """CPU-time medians of two reports of the same parts, side by side."""

    def cpu(timing: dict[str, Any]) -> float:
        return timing.get("cpu_median_ms", timing["median_ms"])

    lines = []
    for rb, ra in zip(before.get("models", []), after.get("models", []), strict=False):
        if "forward" in rb and "forward" in ra:
            lines.append(f"forward {rb['arch']:8}{rb['config']:7} CPU ms before {cpu(rb['forward']):9.0f}"
                         f"  after {cpu(ra['forward']):9.0f}")  # fmt: skip
    for rb, ra in zip(before.get("blocks", []), after.get("blocks", []), strict=False):
        ratio_b = cpu(rb["gabic"]) / cpu(rb["zou2022"])
        ratio_a = cpu(ra["gabic"]) / cpu(ra["zou2022"])
        lines.append(f"block {rb['config']:7}{rb['block']:14}{rb['part']:13} GABIC/Zou2022 CPU before "
                     f"{ratio_b:.2f}  after {ratio_a:.2f}")  # fmt: skip
    for rb, ra in zip(before.get("core", []), after.get("core", []), strict=False):
        lines.append(f"core {rb['config']:7}{rb['scale']:5} b{rb['batch']:<3}{rb['pass']:17} dense CPU ms before "
                     f"{cpu(rb['dense']):8.1f} after {cpu(ra['dense']):8.1f}; PyG/dense after "
                     f"{cpu(ra['pyg']) / cpu(ra['dense']):.2f}; dense/window-attention after "
                     f"{cpu(ra['dense']) / cpu(ra['window_attention']):.2f}")  # fmt: skip
    for name, report in (("before", before), ("after", after)):
        steps = {r["arch"]: cpu(r["step"]) for r in report.get("train", [])}
        if {"gabic", "zou2022"} <= set(steps):
            lines.append(f"training step {name}: GABIC {steps['gabic']:.0f} ms, Zou2022 {steps['zou2022']:.0f} ms "
                         f"(CPU), ratio {steps['gabic'] / steps['zou2022']:.3f}")  # fmt: skip
    return lines


def _app_models(device: str) -> tuple[dict[str, torch.nn.Module], str]:
    from .. import zoo

    models = {}
    source = "shipped weights"
    for name, (arch, config) in zoo.SHIPPED.items():
        try:
            models[name] = zoo.load(name, 2, device)
        except (FileNotFoundError, KeyError, ValueError):
            model = make_model(arch, config, device)
            model.model_id, model.quality = name, 2  # type: ignore[attr-defined]
            models[name] = model
            source = "random weights of the shipped configuration (weights not shipped yet)"
    return models, source


def bench_app(device: str, args: argparse.Namespace) -> dict[str, Any]:
    from ..codec.images import load_image, tensor_to_image
    from ..inspect import analyze

    if KODAK_PHOTO.is_file() and (args.width, args.height) == (768, 512):
        photo, photo_name = load_image(KODAK_PHOTO), KODAK_PHOTO.name
    else:
        photo, photo_name = tensor_to_image(make_image(args.width, args.height)), "random image"
    models, source = _app_models(device)

    def analyze_both() -> None:
        for model in models.values():
            analyze(model, photo)

    result: dict[str, Any] = {"device": device, "photo": photo_name, "size": [photo.width, photo.height],
                              "weights": source, "quality": 2}  # fmt: skip
    result["analyze_both"] = time_call(analyze_both, device, args.repeats, args.warmup)
    for name, model in models.items():
        result[f"analyze_{name}"] = time_call(lambda m=model: analyze(m, photo), device, args.repeats, 0)
    result.update(bench_quality_change(photo, device, args))
    return result


def bench_quality_change(photo: Any, device: str, args: argparse.Namespace) -> dict[str, Any]:
    """What the app does when the user goes back to a quality it has seen: both cached
    analyses from :class:`gabic.explore.Explorer`, the three bit maps and their figures."""
    import importlib
    import tempfile

    from .. import zoo

    try:
        explore = importlib.import_module("gabic.explore")
    except ImportError:
        return {"cached_quality_change": None,
                "cached_quality_change_note": "gabic.explore does not exist; not measured"}  # fmt: skip
    previous = os.environ.get("GABIC_WEIGHTS_DIR")
    with tempfile.TemporaryDirectory() as folder:
        shipped = all(zoo.available(name)[:2] == [1, 2] for name in zoo.SHIPPED)
        if not shipped:  # random weights of the shipped configuration, saved like shipped ones
            for name, (arch, config) in zoo.SHIPPED.items():
                for quality in (1, 2):
                    model = make_model(arch, config, "cpu", seed=quality)
                    card = {"model_id": name, "quality": quality, "note": "random weights (benchmark)"}
                    zoo.save_weights(model, Path(folder) / f"{name}-q{quality}.safetensors", card)
            os.environ["GABIC_WEIGHTS_DIR"] = folder
        try:
            explorer = explore.Explorer(explore.WeightsSource(device=device))
            image = explore.prepare_image(photo, max_side=None)
            start = time.perf_counter()
            explorer.pair(image, 1)
            first_pair_ms = (time.perf_counter() - start) * 1000
            explorer.pair(image, 2)
            state = {"quality": 2}

            def change() -> None:
                state["quality"] = 3 - state["quality"]
                pair = explorer.pair(image, state["quality"])
                assert explorer.is_pair_cached(image, state["quality"])
                maps = explore.bit_maps(pair)
                for which in ("gabic", "zou2022", "difference"):
                    explore.bits_figure(maps, which)

            timing = time_call(change, device, args.repeats, args.warmup)
        finally:
            if previous is None:
                os.environ.pop("GABIC_WEIGHTS_DIR", None)
            else:
                os.environ["GABIC_WEIGHTS_DIR"] = previous
            zoo._CACHE.clear()  # drop the temporary models from zoo's cache
    return {"cached_quality_change": timing, "explorer_first_pair_ms": first_pair_ms,
            "cached_quality_change_note": "Explorer.pair from the cache + bit_maps + 3 bits_figure, "
            f"image {image.size[0]}x{image.size[1]}, " + ("shipped" if shipped else "random") + " weights"}  # fmt: skip


def bench_train(arch: str, device: str, args: argparse.Namespace, config: ModelConfig = SMALL_CONFIG,
                batch: int = 8, patch: int = 128, bf16: bool = False) -> dict[str, Any]:  # fmt: skip
    from compressai.losses import RateDistortionLoss

    from ..train.loop import autocast_transforms, split_parameters

    torch.manual_seed(0)
    model = build_model(arch, config).to(device).train()
    if bf16:
        autocast_transforms(model)
    net, aux = split_parameters(model)
    optimizer = torch.optim.Adam(net, lr=1e-4)
    aux_optimizer = torch.optim.Adam(aux, lr=1e-3)
    criterion = RateDistortionLoss(lmbda=0.0483)
    x = torch.rand(batch, 3, patch, patch, generator=torch.Generator().manual_seed(0)).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        aux_optimizer.zero_grad(set_to_none=True)
        losses = criterion(model(x), x)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net, 1.0)
        optimizer.step()
        model.aux_loss().backward()
        aux_optimizer.step()

    timing = time_call(step, device, args.repeats, args.warmup)
    return {"arch": arch, "device": device, "config": config.to_dict(), "batch": [batch, 3, patch, patch],
            "bf16_transforms": bf16, "step": timing,
            "images_per_s": batch / (timing["median_ms"] / 1000)}  # fmt: skip


# ---------------------------------------------------------------- CLI
def build_argument_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m gabic bench", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated parts of {','.join(PARTS)} (default: all)")
    parser.add_argument("--configs", default="paper,small",
                        help="comma-separated: paper, small (shipped) or JSON files of ModelConfig fields")  # fmt: skip
    parser.add_argument("--size", default="768x512", help="input WIDTHxHEIGHT (default 768x512)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    parser.add_argument("--devices", help="cpu,cuda (default: cpu, plus cuda when available)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-patch", type=int, default=128)
    parser.add_argument("--train-bf16", action="store_true",
                        help="training step with the transforms under bfloat16 autocast (train --bf16)")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 128x128, small config (unless --configs), 1 repeat, no warm-up, "
                        "training batch 2x64², no memory/app")  # fmt: skip
    parser.add_argument("--note", help="free text stored in the JSON (e.g. machine load)")
    parser.add_argument("--output", help="write the JSON here")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                        help="print CPU-time ratios of two bench JSON files and exit")  # fmt: skip
    return parser


def _fmt_ms(timing: dict[str, Any] | None) -> str:
    return "-" if not timing else f"{timing['median_ms']:.1f}"


def print_report(report: dict[str, Any]) -> None:
    rows = report.get("models", [])
    if rows:
        print(f"\n{'model':<9}{'config':<7}{'dev':<5}{'params':>9}{'MB':>7}{'GFLOPs':>9}"
              f"{'fwd ms':>9}{'enc ms':>9}{'dec ms':>9}{'peak fwd MB':>12}")  # fmt: skip
        for r in rows:
            peak = r.get("peak_memory", {}).get("forward_mb")
            print(f"{r['arch']:<9}{r['config']:<7}{r['device']:<5}"
                  f"{r.get('parameters', 0) / 1e6:>8.2f}M{r.get('parameter_mb', 0):>7.1f}"
                  f"{r.get('gflops', float('nan')):>9.1f}{_fmt_ms(r.get('forward')):>9}"
                  f"{_fmt_ms(r.get('encode')):>9}{_fmt_ms(r.get('decode')):>9}"
                  f"{'-' if peak is None else f'{peak:.0f}':>12}")  # fmt: skip
    for r in report.get("blocks", []):
        print(f"block {r['config']:<6}{r['block']:<13}{r['part']:<13} GABIC {_fmt_ms(r['gabic']):>8} ms"
              f"  Zou2022 {_fmt_ms(r['zou2022']):>8} ms  ratio {r['ratio']:.2f}")  # fmt: skip
    for r in report.get("core", []):
        print(f"core  {r['config']:<6}{r['scale']:<5} b{r['batch']:<3}{r['pass']:<17} dense {_fmt_ms(r['dense']):>8}"
              f"  pyg {_fmt_ms(r['pyg']):>8}  window-attn {_fmt_ms(r['window_attention']):>8} ms"
              f"  pyg/dense {r['pyg_over_dense']:.2f}  max|diff| {r['max_abs_diff_dense_vs_pyg']:.1e}")  # fmt: skip
    app = report.get("app")
    if app:
        print(f"app   analyze both models ({app['size'][0]}x{app['size'][1]}): {_fmt_ms(app['analyze_both'])} ms;"
              f" cached quality change: {_fmt_ms(app.get('cached_quality_change'))} ms"
              f" ({app.get('cached_quality_change_note')})")  # fmt: skip
    for r in report.get("train", []):
        print(
            f"train {r['arch']:<8}{r['device']:<5}{' bf16' if r.get('bf16_transforms') else ''} step "
            f"{_fmt_ms(r['step'])} ms  ({r['images_per_s']:.1f} img/s)"
        )


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compare:
        before, after = (json.loads(Path(p).read_text()) for p in args.compare)
        for line in compare_reports(before, after):
            print(line)
        return 0
    parts = set(DEFAULT_PARTS) if not args.only else {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if args.quick:
        if args.size == "768x512":
            args.size = "128x128"
        args.repeats, args.warmup = 1, 0
        configs = configs if args.configs != "paper,small" else ["small"]
        args.train_batch, args.train_patch = 2, 64
        if not args.only:
            parts -= {"memory", "app"}
    for config in configs:
        resolve_config(config)  # fail early on a bad name
    try:
        args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be WIDTHxHEIGHT, got {args.size!r}") from None
    devices = [d.strip() for d in args.devices.split(",")] if args.devices else (
        ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])  # fmt: skip
    report: dict[str, Any] = {"machine": machine_description(devices), "size": [args.width, args.height],
                              "repeats": args.repeats, "warmup": args.warmup, "parts": sorted(parts),
                              "configs": {c: resolve_config(c).to_dict() for c in configs}}  # fmt: skip
    if args.note:
        report["note"] = args.note
    started = time.perf_counter()
    model_parts = parts & {"model", "flops", "forward", "codec", "memory"}
    for device in devices:
        if model_parts:
            for config in configs:
                for arch in ARCHS:
                    print(f"[bench] {arch} {config} {device}: {','.join(sorted(model_parts))}", flush=True)
                    report.setdefault("models", []).append(
                        bench_model_level(arch, config, device, args, model_parts)
                    )
        if "blocks" in parts:
            for config in configs:
                print(f"[bench] blocks {config} {device}", flush=True)
                report.setdefault("blocks", []).extend(bench_blocks(config, device, args))
        if "core" in parts:
            for config in configs:
                print(f"[bench] graph core {config} {device}", flush=True)
                report.setdefault("core", []).extend(bench_core(config, device, args))
            train_config = "small" if "small" in configs else configs[0]
            print(f"[bench] graph core, training crops ({train_config}) {device}", flush=True)
            for backward in (False, True):
                report["core"].extend(bench_core(train_config, device, args, args.train_batch, args.train_patch,
                                                 args.train_patch, backward))  # fmt: skip
        if "app" in parts:
            print(f"[bench] app latency {device}", flush=True)
            report["app"] = bench_app(device, args)
        if "train" in parts:
            train_config = "small" if "small" in configs else configs[0]
            for arch in ARCHS:
                print(f"[bench] training step {arch} {train_config} {device}", flush=True)
                report.setdefault("train", []).append(bench_train(
                    arch, device, args, resolve_config(train_config), args.train_batch, args.train_patch,
                    args.train_bf16))  # fmt: skip
        if "profile" in parts:
            for config in configs:
                report.setdefault("profile", []).extend(profile_core(config, device, args))
    report["elapsed_s"] = time.perf_counter() - started
    report["machine"]["load_average_end"] = list(os.getloadavg())
    report["summary"] = summarise(report)
    print_report(report)
    for line in report["summary"]:
        print(line)
    if args.output:
        write_json(args.output, report, indent=1)
    return 0


def summarise(report: dict[str, Any]) -> list[str]:
    """The issue-6 ratios, as readable lines."""
    lines = []
    by_key = {(r["arch"], r["config"], r["device"]): r for r in report.get("models", [])}
    for (arch, config, device), row in by_key.items():
        other = by_key.get(("zou2022", config, device))
        if arch != "gabic" or other is None:
            continue
        for key in ("forward", "encode", "decode"):
            if key in row and key in other:
                ratio = row[key]["median_ms"] / other[key]["median_ms"]
                lines.append(f"{config} {device} {key}: GABIC / Zou2022 = {ratio:.3f}")
        if "gflops" in row and "gflops" in other:
            lines.append(f"{config} {device} FLOPs: GABIC / Zou2022 = {row['gflops'] / other['gflops']:.4f}")
    for row in report.get("core", []):
        if row["pass"] == "forward" and row["batch"] == 1 and row["scale"] == "1/4":
            lines.append(
                f"{row['config']} {row['device']} graph core 1/4: PyG / dense = {row['pyg_over_dense']:.2f}"
            )
    train = {r["arch"]: r for r in report.get("train", [])}
    if {"gabic", "zou2022"} <= set(train):
        ratio = train["gabic"]["step"]["median_ms"] / train["zou2022"]["step"]["median_ms"]
        shape = "x".join(str(v) for v in train["gabic"]["batch"])
        lines.append(f"training step ({shape}): GABIC / Zou2022 = {ratio:.3f}")
    return lines
