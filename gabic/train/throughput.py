"""Does the data pipeline keep a GPU busy? Images/s and data-wait share against a synthetic step.

A GPU training step leaves the CPU idle while the GPU computes; a ``sleep`` of the step's
duration stands in for it here, so the numbers show what the decoding workers of *this* CPU
deliver to a step of that length::

    python -m gabic.train.throughput --synthetic 400 --workers 0 1 2 4 --step-ms 100
    python -m gabic.train.throughput --data /path/to/openimages --workers 4 8 --step-ms 150

With enough workers the data-wait share falls towards 0 and images/s reaches
``batch / step``: the data pipeline is then not what limits the step. (``python -m gabic train``
logs the same two numbers for every real step: ``images_per_s`` and ``data_share``.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .data import RandomCropDataset, epoch_loader, list_tree, steps_per_epoch


def synthetic_photos(folder: Path, count: int, width: int = 768, height: int = 512, seed: int = 0) -> Path:
    """``count`` JPEG photos (smooth gradients plus noise, quality 90) in ten subfolders of
    ``folder``: decoding costs about what a real photo of that size costs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / width, yy / height, (xx + yy) / (width + height)], -1) * 200
    for i in range(count):
        sub = folder / f"part{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        array = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(array).save(sub / f"{i:06d}.jpg", quality=90)
    return folder


def measure_pipeline(train_dir: str | Path, *, workers: int, batch: int = 16, patch: int = 256,
                     step_ms: float = 100.0, steps: int = 30, warmup: int = 3,
                     seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Run the training data pipeline (one process) for ``warmup + steps`` batches, each followed
    by a synthetic step of ``step_ms``; report the ``steps`` timed ones.

    Returns ``images_per_s`` (images per second of wall time), ``data_wait_share`` (the share
    of the time spent waiting for a batch), the median wait per batch, and the settings.
    """
    files = list_tree(train_dir)
    dataset = RandomCropDataset(train_dir, files, patch, seed)
    per_epoch = steps_per_epoch(dataset, batch, 1)
    waits: list[float] = []
    totals: list[float] = []
    epoch = 0
    while len(totals) < warmup + steps:
        batches = iter(epoch_loader(dataset, epoch, batch=batch, world=1, rank=0, workers=workers))
        for _ in range(min(per_epoch, warmup + steps - len(totals))):
            start = time.perf_counter()
            next(batches)
            waits.append(time.perf_counter() - start)
            time.sleep(step_ms / 1000)
            totals.append(time.perf_counter() - start)
        del batches
        epoch += 1
    waits, totals = waits[warmup:], totals[warmup:]
    return {
        "workers": workers, "batch": batch, "patch": patch, "step_ms": step_ms, "steps": steps,
        "files": len(files), "images_per_s": batch * len(totals) / sum(totals),
        "images_per_s_limit": batch / (step_ms / 1000) if step_ms > 0 else None,
        "data_wait_share": sum(waits) / sum(totals), "data_wait_ms_median": 1000 * statistics.median(waits),
    }  # fmt: skip


def sweep(train_dir: str | Path, workers: list[int], **settings: Any) -> list[dict[str, Any]]:
    """:func:`measure_pipeline` for each number of ``workers``."""
    return [measure_pipeline(train_dir, workers=count, **settings) for count in workers]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gabic.train.throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="a training folder tree")
    source.add_argument("--synthetic", type=int, metavar="N", help="N generated 768×512 JPEG photos")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--step-ms", type=float, default=100.0, help="duration of the synthetic step")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    settings = {"batch": args.batch, "patch": args.patch, "step_ms": args.step_ms, "steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data or synthetic_photos(Path(tmp), args.synthetic)
        results = sweep(folder, args.workers, **settings)
    for r in results:
        print(f"workers {r['workers']:>2}: {r['images_per_s']:7.1f} images/s (step alone: "
              f"{r['images_per_s_limit']:.1f}), waiting for data {100 * r['data_wait_share']:5.1f} % "
              f"(median {r['data_wait_ms_median']:.1f} ms per batch)")  # fmt: skip
    if args.output:
        args.output.write_text(json.dumps({"settings": settings, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
