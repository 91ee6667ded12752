"""Benchmark GABIC against Zou2022: paper Table 1 by a command, plus per-block, app-level and
training-step costs.

Parts (``--only a,b``; default all but ``data``, ``search`` and ``profile``):

- ``model``: parameters and parameter memory (no timing).
- ``flops``: FLOPs of one forward pass (``torch.utils.flop_counter.FlopCounterMode``; counts
  matmuls/convolutions as 2 FLOPs per multiply-add, fused attention as its two matmuls; kNN top-k,
  gathers and softmax are not counted). GABIC's dense path computes every pair of a window and
  masks all but the k edges, so it counts as Zou2022's window attention plus the kNN distances.
- ``forward``: eval-mode forward ms.
- ``codec``: encode and decode ms of real bitstreams (:mod:`gabic.codec`).
- ``memory``: peak memory of forward / encode / decode (CPU: resident-set high-water mark in a
  fresh process; CUDA: ``torch.cuda.max_memory_allocated``).
- ``blocks``: each attention module (G-WAM / WAM) and each window block alone, at the feature-map
  size the image gives it.
- ``core``: the graph core (:class:`gabic.layers.KNNGraphAttention`) on its dense path vs its
  PyTorch Geometric path, and Zou2022's window attention on the same windows; outputs of the two
  graph paths are compared.
- ``app``: full :func:`gabic.inspect.analyze` of a photo (``--photo``; default scikit-image's
  "coffee" resized to ``--size``) with both shipped models at q2 (random weights of the same
  configuration where the weights are missing).
- ``train``: one optimizer step of the shipped configuration (batch 8×128², R-D loss, gradient
  clipping, Adam, auxiliary loss and its optimizer).
- ``search`` (only when asked for): encoder search (:mod:`gabic.codec.search`) with both shipped
  variable-rate models at quality 2 on the photo of ``app``: encode time, size and PSNR at effort 0
  and 30.
- ``profile`` (only when asked for): :mod:`torch.profiler` tables of the graph core (dense and
  PyG paths) and of the window attention at the 1/4-scale block, inference shape (forward) and
  training shape (forward+backward).

``--compare BEFORE.json AFTER.json`` prints the CPU-time ratios of two reports.

Times are medians of ``--repeats`` runs after ``--warmup`` runs; CUDA runs are synchronised.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..records import write_json
from .report import compare_reports, print_report
from .runner import PARTS
from .runner import run as run_benchmarks


def build_argument_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m gabic bench", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the list of parts as written
    parser.add_argument(
        "--only",
        help=f"comma-separated parts of {','.join(PARTS)} (default: all but data, search and profile)",
    )
    parser.add_argument("--configs", help="comma-separated: paper, small (shipped) or JSON files of ModelConfig "
                        "fields (default paper,small; small with --quick)")  # fmt: skip
    parser.add_argument("--size", help="input WIDTHxHEIGHT (default 768x512; 128x128 with --quick)")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement, median (default 5)")
    parser.add_argument("--warmup", type=int, help="untimed runs before timing (default 1)")
    parser.add_argument("--devices", help="cpu,cuda (default: cpu, plus cuda when available)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--train-batch", type=int, help="training-step batch (default 8; 2 with --quick)")
    parser.add_argument(
        "--train-patch", type=int, help="training-step crop side (default 128; 64 with --quick)"
    )
    parser.add_argument("--train-bf16", action="store_true",
                        help="training step with the transforms under bfloat16 autocast (train --bf16)")  # fmt: skip
    parser.add_argument("--photo", help="image file for the app part (default: scikit-image's 'coffee' "
                        "resized to --size)")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 128x128, small config, 1 repeat, no warm-up, training batch 2x64², "
                        "no memory/app (each unless given)")  # fmt: skip
    parser.add_argument("--note", help="free text stored in the JSON (e.g. machine load)")
    parser.add_argument("--output", help="write the JSON here")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                        help="print CPU-time ratios of two bench JSON files and exit")  # fmt: skip
    return parser


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"768x512"`` -> ``(768, 512)``; ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be WIDTHxHEIGHT, got {text!r}") from None
    return width, height


def run(args: argparse.Namespace) -> int:
    """``python -m gabic bench``: run, print the table and the ratios, write the JSON; or ``--compare``."""
    if args.compare:
        before, after = (json.loads(Path(p).read_text()) for p in args.compare)
        for line in compare_reports(before, after):
            print(line)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    report = run_benchmarks(parts=_split(args.only), configs=_split(args.configs), size=parse_size(args.size),
                            repeats=args.repeats, warmup=args.warmup, devices=_split(args.devices),
                            train_batch=args.train_batch, train_patch=args.train_patch,
                            train_bf16=args.train_bf16, photo=args.photo, quick=args.quick,
                            note=args.note)  # fmt: skip
    print_report(report)
    if args.output:
        write_json(args.output, report, indent=1)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m gabic.bench.cli`` (``python -m gabic bench`` is the usual one)."""
    return run(build_argument_parser().parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
