"""Run the chosen benchmark parts on the chosen configurations and devices; return the report."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..models import resolve_config
from .app_latency import bench_app
from .blocks import bench_blocks
from .core import bench_core, profile_core
from .data_pipeline import bench_data
from .inputs import ARCHS, Settings, machine_description
from .model_level import MODEL_PARTS, bench_model_level
from .report import summarise
from .search import bench_search
from .train_step import bench_train

PARTS = ("model", "flops", "forward", "codec", "memory", "blocks", "core", "app", "train", "data", "search",
         "profile")  # fmt: skip
#: Parts run when none are named (``profile`` prints long tables, ``search`` takes minutes: ask for them).
DEFAULT_PARTS = tuple(part for part in PARTS if part not in ("data", "search", "profile"))
DEFAULT_CONFIGS = ("paper", "small")
#: ``quick=True``: a smoke run (settings not given explicitly come from here; configuration
#: ``small``; without named parts, no ``memory`` and no ``app``).
QUICK = Settings(width=128, height=128, repeats=1, warmup=0, train_batch=2, train_patch=64)


def choose_parts(parts: Iterable[str] | None, quick: bool = False) -> set[str]:
    """The parts to run: those named, else :data:`DEFAULT_PARTS` (less ``memory`` and ``app`` when quick)."""
    if parts is None:
        return set(DEFAULT_PARTS) - ({"memory", "app"} if quick else set())
    chosen = {p.strip() for p in parts if p.strip()}
    unknown = chosen - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    return chosen


def run(parts: Iterable[str] | None = None, configs: Sequence[str] | None = None,
        size: tuple[int, int] | None = None, repeats: int | None = None, warmup: int | None = None,
        devices: Sequence[str] | None = None, train_batch: int | None = None, train_patch: int | None = None,
        train_bf16: bool = False, photo: str | None = None, quick: bool = False, note: str | None = None,
        verbose: bool = True) -> dict[str, Any]:  # fmt: skip
    """Measure ``parts`` of both models and return the report (a JSON-able dict).

    Args:
        parts: of :data:`PARTS` (default :data:`DEFAULT_PARTS`).
        configs: ``"paper"``, ``"small"`` or JSON files of :class:`gabic.models.ModelConfig` fields
            (default both; ``small`` when ``quick``).
        size: input ``(width, height)`` (default 768×512; 128×128 when ``quick``).
        repeats, warmup: timed and untimed calls per measurement (default 5 and 1; 1 and 0 when quick).
        devices: ``cpu``, ``cuda`` (default: cpu, and cuda when available).
        train_batch, train_patch, train_bf16: the training step's batch (default 8×128²; 2×64² when
            quick) and whether its transforms run under bfloat16 autocast.
        photo: image file of the ``app`` part (default: a scikit-image sample resized to ``size``).
        quick: smoke-run defaults (:data:`QUICK`).
        note: free text stored in the report.
        verbose: print one line per measurement as it starts (and the ``profile`` tables).

    Returns:
        ``machine``, ``size``, ``repeats``, ``warmup``, ``parts``, ``configs`` and, per part run,
        ``models`` (rows of Table 1), ``blocks``, ``core``, ``app``, ``train``, ``profile``;
        ``summary`` (GABIC / Zou2022 ratios as lines) and ``elapsed_s``. Times are in ms
        (``median_ms``, ``min_ms``, ``cpu_median_ms``, ``runs_ms``).
    """
    chosen = choose_parts(parts, quick)
    base = QUICK if quick else Settings()
    configs = list(configs) if configs else (["small"] if quick else list(DEFAULT_CONFIGS))
    resolved = {name: resolve_config(name).to_dict() for name in configs}  # fail early on a bad name
    width, height = size or (base.width, base.height)
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive, got {width}x{height}")
    if photo is not None and not Path(photo).is_file():
        raise FileNotFoundError(f"photo {photo!r} is not a file")
    settings = Settings(width=width, height=height,
                        repeats=base.repeats if repeats is None else repeats,
                        warmup=base.warmup if warmup is None else warmup,
                        train_batch=train_batch or base.train_batch, train_patch=train_patch or base.train_patch,
                        train_bf16=train_bf16, photo=photo)  # fmt: skip
    devices = list(devices) if devices else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    report: dict[str, Any] = {"machine": machine_description(devices), "size": [width, height],
                              "repeats": settings.repeats, "warmup": settings.warmup, "parts": sorted(chosen),
                              "configs": resolved}  # fmt: skip
    if note:
        report["note"] = note
    log = print if verbose else (lambda *args, **kwargs: None)
    started = time.perf_counter()
    for device in devices:
        report_device(report, device, chosen, configs, settings, log, verbose)
    report["elapsed_s"] = time.perf_counter() - started
    with contextlib.suppress(OSError):
        report["machine"]["load_average_end"] = list(os.getloadavg())
    report["summary"] = summarise(report)
    return report


def report_device(report: dict[str, Any], device: str, parts: set[str], configs: list[str], settings: Settings,
                  log: Callable[..., None], verbose: bool) -> None:  # fmt: skip
    """Run ``parts`` on one device and add their rows to ``report``."""
    train_config = "small" if "small" in configs else configs[0]
    model_parts = parts & MODEL_PARTS
    if model_parts:
        for config in configs:
            for arch in ARCHS:
                log(f"[bench] {arch} {config} {device}: {','.join(sorted(model_parts))}", flush=True)
                row = bench_model_level(arch, config, device, settings, model_parts)
                report.setdefault("models", []).append(row)
    if "blocks" in parts:
        for config in configs:
            log(f"[bench] blocks {config} {device}", flush=True)
            report.setdefault("blocks", []).extend(bench_blocks(config, device, settings))
    if "core" in parts:
        for config in configs:
            log(f"[bench] graph core {config} {device}", flush=True)
            report.setdefault("core", []).extend(bench_core(config, device, settings))
        log(f"[bench] graph core, training crops ({train_config}) {device}", flush=True)
        crop = settings.train_patch
        for backward in (False, True):
            rows = bench_core(train_config, device, settings, settings.train_batch, crop, crop, backward)
            report["core"].extend(rows)
    if "app" in parts:
        log(f"[bench] app latency {device}", flush=True)
        report["app"] = bench_app(device, settings)
    if "train" in parts:
        for arch in ARCHS:
            log(f"[bench] training step {arch} {train_config} {device}", flush=True)
            row = bench_train(arch, device, settings, resolve_config(train_config))
            report.setdefault("train", []).append(row)
    if "data" in parts and "data" not in report:  # the pipeline runs on the CPU: once per report
        log("[bench] training data pipeline against a synthetic step", flush=True)
        report["data"] = bench_data()
    if "search" in parts:
        log(f"[bench] encoder search {device}", flush=True)
        report["search"] = bench_search(device, settings)
    if "profile" in parts:
        for config in configs:
            report.setdefault("profile", []).extend(profile_core(config, device, settings, verbose))
