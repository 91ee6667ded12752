"""Wall-clock and CPU-time medians of a call, alone or interleaved with another."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def sync(device: torch.device | str) -> None:
    """Wait for the device's queued work (CUDA); nothing to do on the CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def summarise_times(times: list[float], cpu: list[float]) -> dict[str, Any]:
    """Wall-clock median/min and the median CPU time of this process (all its threads), in ms.

    On a loaded machine the wall time includes waiting for a core; the CPU time
    does not, so ratios of CPU times are the steadier comparison there.
    """
    return {"median_ms": statistics.median(times), "min_ms": min(times), "cpu_median_ms": statistics.median(cpu),
            "runs_ms": times}  # fmt: skip


def _timed(fn: Callable[[], Any], device: torch.device | str) -> tuple[float, float]:
    """``(wall ms, CPU ms)`` of one call of ``fn``, device synchronised."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return (time.perf_counter() - start) * 1000, (time.process_time() - start_cpu) * 1000


def time_call(fn: Callable[[], Any], device: torch.device | str = "cpu", repeats: int = 5,
              warmup: int = 1) -> dict[str, Any]:  # fmt: skip
    """Median (and all) times in ms of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times, cpu = [], []
    for _ in range(max(1, repeats)):
        wall_ms, cpu_ms = _timed(fn, device)
        times.append(wall_ms)
        cpu.append(cpu_ms)
    return summarise_times(times, cpu)


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
        for index, fn in enumerate((fn_a, fn_b)):
            wall_ms, cpu_ms = _timed(fn, device)
            times[index].append(wall_ms)
            cpu[index].append(cpu_ms)
    return summarise_times(times[0], cpu[0]), summarise_times(times[1], cpu[1])
