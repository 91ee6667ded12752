"""Peak memory of forward / encode / decode.

CPU: resident-set high-water mark (``VmHWM`` after resetting it through
``/proc/self/clear_refs``) minus the resident set before the call, measured in a fresh
process (``python -m gabic.bench.memory``) whose large allocations are ``mmap``-ed so that
freed memory leaves the RSS. CUDA: ``torch.cuda.max_memory_allocated`` minus the memory
before the call.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..codec import compress_tensor, decompress_tensor, pad_image
from ..models import resolve_config
from .inputs import make_image, make_model


def read_status_kb(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``...)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset the resident-set high-water mark (Linux ``clear_refs`` 5); returns the current RSS in kB."""
    Path("/proc/self/clear_refs").write_text("5")
    return read_status_kb("VmRSS")


def _peaks(model: torch.nn.Module, x: torch.Tensor, peak: Callable[[Callable[[], Any]], tuple[Any, float]]
           ) -> dict[str, float]:  # fmt: skip
    """Peak MB of forward, encode and decode, each measured by ``peak(fn) -> (fn(), MB)``."""
    padded, _ = pad_image(x)
    with torch.no_grad():
        _, forward = peak(lambda: model(padded))
    data, encode = peak(lambda: compress_tensor(model, x))
    _, decode = peak(lambda: decompress_tensor(data, model))
    return {"forward_mb": forward, "encode_mb": encode, "decode_mb": decode}


def _rss_peak(fn: Callable[[], Any]) -> tuple[Any, float]:
    gc.collect()
    base = reset_peak_rss()
    out = fn()
    return out, (read_status_kb("VmHWM") - base) / 1024


def peak_memory_cpu(arch: str, config: str, width: int, height: int) -> dict[str, Any]:
    """Peak RSS deltas in MB, measured in a fresh process (see the module docstring)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "gabic.bench.memory", arch, config, str(width), str(height),
               str(torch.get_num_threads())]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "method": "VmHWM delta, fresh process"}


def peak_memory_cuda(model: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Peak allocated CUDA memory deltas in MB of forward, encode and decode."""
    device = x.device

    def peak(fn: Callable[[], Any]) -> tuple[Any, float]:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        torch.cuda.synchronize(device)
        return out, (torch.cuda.max_memory_allocated(device) - base) / 2**20

    return {**_peaks(model, x, peak), "method": "torch.cuda.max_memory_allocated delta"}


def _probe(argv: list[str]) -> None:
    """The fresh process of :func:`peak_memory_cpu`: ``ARCH CONFIG WIDTH HEIGHT THREADS``; prints JSON."""
    arch, config, width, height, threads = argv[0], argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    torch.set_num_threads(threads)
    model = make_model(arch, resolve_config(config), "cpu")
    print(json.dumps(_peaks(model, make_image(width, height), _rss_peak)))


if __name__ == "__main__":
    _probe(sys.argv[1:])
