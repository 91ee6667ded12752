"""``python -m app.memory_bench``: resident memory of the app's service after many distinct uploads.

Each upload is a different photo of about 0.15 MP (481×321 crops of the scikit-image samples at
different scales and offsets), prepared as the app prepares it and analysed by both models
through :class:`app.service.Explorer`: at the start quality and, as the app's background
prefetch does, at every other quality (``--qualities start`` analyses the start quality only).
Prints the process's resident memory (VmRSS) every ten uploads and at the end, its peak
(VmHWM), and what the cache holds; ``--output`` writes the same as JSON.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gabic import zoo
from gabic.records import write_json

from .inputs import SAMPLES, prepare_image, sample_image
from .service import DEFAULT_CACHE_BYTES, Explorer
from .weights import WeightsSource


def memory_mb() -> dict[str, float]:
    """``{"rss": current, "peak": highest}`` resident memory of this process in MB (Linux /proc)."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values["rss" if line.startswith("VmRSS") else "peak"] = int(line.split()[1]) / 1024
    return values


def distinct_photo(index: int, width: int, height: int) -> Image.Image:
    """Photo ``index``: a ``width × height`` crop of a scikit-image sample, scaled and placed
    by a generator seeded with ``index`` (different indices give different pixels)."""
    source = sample_image(SAMPLES[index % len(SAMPLES)])
    rng = np.random.default_rng(index)
    scale = max(width / source.width, height / source.height) * (1.0 + 0.5 * rng.random())
    size = (max(width, round(source.width * scale)), max(height, round(source.height * scale)))
    resized = source.resize(size, Image.Resampling.LANCZOS)
    left = int(rng.integers(0, resized.width - width + 1))
    top = int(rng.integers(0, resized.height - height + 1))
    return resized.crop((left, top, left + width, top + height))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Analyse ``args.uploads`` distinct photos; returns the measurements."""
    if args.threads:
        torch.set_num_threads(args.threads)
    explorer = Explorer(WeightsSource(device=args.device), cache_bytes=args.cache_mb * 2**20)
    qualities = explorer.source.common_qualities()
    if not qualities:
        raise SystemExit(explorer.source.problem())
    start_quality = qualities[min(1, len(qualities) - 1)]
    order = [start_quality] + (
        [q for q in qualities if q != start_quality] if args.qualities == "all" else []
    )
    before = memory_mb()
    print(f"weights {zoo.weights_dir()}; qualities per upload {order}; cache budget {args.cache_mb} MB; "
          f"RSS before {before['rss']:.0f} MB", flush=True)  # fmt: skip
    progress = []
    started = time.perf_counter()
    for index in range(args.uploads):
        image = prepare_image(distinct_photo(index, args.width, args.height))
        for quality in order:
            explorer.pair(image, quality)
        if (index + 1) % 10 == 0 or index + 1 == args.uploads:
            now = {"uploads": index + 1, **memory_mb(), **explorer.results.stats(),
                   "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
            progress.append(now)
            print(f"{now['uploads']:3d} uploads: RSS {now['rss']:.0f} MB (peak {now['peak']:.0f} MB), "
                  f"cache {now['entries']} analyses ≈ {now['bytes'] / 2**20:.0f} MB, {now['seconds']:.0f} s",
                  flush=True)  # fmt: skip
    report = {"uploads": args.uploads, "photo": [args.width, args.height], "qualities": order,
              "cache_budget_mb": args.cache_mb, "threads": torch.get_num_threads(), "device": args.device,
              "weights": str(zoo.weights_dir()), "before": before, "progress": progress,
              "final_rss_mb": progress[-1]["rss"], "peak_rss_mb": progress[-1]["peak"]}  # fmt: skip
    if args.output:
        write_json(args.output, report)
    return report


def build_argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.memory_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--uploads", type=int, default=60, help="distinct photos (default 60)")
    parser.add_argument("--width", type=int, default=481)
    parser.add_argument("--height", type=int, default=321)
    parser.add_argument("--qualities", choices=["all", "start"], default="all",
                        help="analyse every quality per upload as the prefetch does (default), or the start one")  # fmt: skip
    parser.add_argument("--cache-mb", type=int, default=DEFAULT_CACHE_BYTES // 2**20,
                        help="the explorer's cache budget (default: the app's)")  # fmt: skip
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--output", help="write the measurements as JSON here")
    return parser


def main(argv: list[str] | None = None) -> None:
    report = run(build_argument_parser().parse_args(argv))
    print(f"after {report['uploads']} uploads: RSS {report['final_rss_mb']:.0f} MB, "
          f"peak {report['peak_rss_mb']:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
