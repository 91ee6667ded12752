"""The ``data`` part: does the training data pipeline keep up with a training step?

The streaming pipeline of :mod:`gabic.train.data` (JPEG decoding, random crop and flip in
DataLoader workers) runs against a synthetic step of a fixed duration, once per number of
workers; the report gives images per second and the share of the wall time spent waiting for
data (:func:`gabic.train.throughput.measure_pipeline`). With enough workers the wait share
falls towards 0, i.e. the pipeline no longer limits a step that fast.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..train.throughput import sweep, synthetic_photos

#: What the part measures: photos like Kodak's size, the paper's batch and crop.
PHOTOS, WIDTH, HEIGHT = 48, 768, 512
BATCH, PATCH = 16, 256
WORKERS = (0, 1, 2)


def bench_data(step_ms: float = 100.0, steps: int = 8, workers: tuple[int, ...] = WORKERS) -> dict[str, Any]:
    """Images/s and data-wait share of the pipeline against a ``step_ms`` synthetic step, per
    number of workers (generated JPEG photos in a temporary folder tree)."""
    with tempfile.TemporaryDirectory() as folder:
        synthetic_photos(Path(folder), PHOTOS, WIDTH, HEIGHT)
        rows = sweep(folder, list(workers), batch=BATCH, patch=PATCH, step_ms=step_ms, steps=steps, warmup=2)
    return {"step_ms": step_ms, "batch": BATCH, "patch": PATCH, "photos": f"{PHOTOS} generated {WIDTH}x{HEIGHT} JPEG",
            "rows": rows}  # fmt: skip
