"""BD-rate and BD-PSNR between result files (CompressAI format), and an RD plot.

The first file is the anchor; every other file is compared with it using the
``bjontegaard`` package (Akima interpolation by default, curves with
different numbers of points allowed). BD-rate is given for PSNR and for
MS-SSIM in dB (``-10 log10(1 - MS-SSIM)``); negative BD-rate means the test
codec needs fewer bits for the same quality. The plot is :func:`gabic.viz.rd_figure`
(PSNR and MS-SSIM panels), written as HTML and, when a Chrome/Chromium is available to
kaleido, as PNG (:func:`gabic.viz.save_figure`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import bjontegaard

from ..records import write_json
from ..viz import rd_figure, save_figure

METHODS = ("akima", "pchip", "cubic")


def load_curve(path: str | os.PathLike) -> dict[str, Any]:
    """``{"name", "bpp", "psnr", "ms_ssim_db"}`` from a CompressAI-style results file, sorted by bpp."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        results = data["results"]
        bpp = [float(b) for b in results["bpp"]]
        psnr = [float(p) for p in results["psnr-rgb"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path}: not a results file with results.bpp and results.psnr-rgb ({error})"
        ) from None
    if len(bpp) != len(psnr) or len(bpp) < 2:
        raise ValueError(f"{path}: needs at least two RD points with bpp and psnr-rgb")
    ms_ssim = results.get("ms-ssim-rgb") or [None] * len(bpp)
    ms_ssim_db = [ms_ssim_to_db(v) for v in ms_ssim]
    order = sorted(range(len(bpp)), key=lambda i: bpp[i])
    return {
        "name": str(data.get("name") or path.stem),
        "file": str(path),
        "bpp": [bpp[i] for i in order],
        "psnr": [psnr[i] for i in order],
        "ms_ssim_db": [ms_ssim_db[i] for i in order],
    }


def ms_ssim_to_db(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value >= 1:
        return None
    return -10 * math.log10(1 - value)


def _bd(function: Any, anchor_rate: list[float], anchor_dist: list[float], test_rate: list[float],
        test_dist: list[float], method: str) -> float | None:  # fmt: skip
    """One BD number, or ``None`` when the curves do not overlap enough to define it."""
    anchor = [(r, d) for r, d in zip(anchor_rate, anchor_dist, strict=True) if d is not None]
    test = [(r, d) for r, d in zip(test_rate, test_dist, strict=True) if d is not None]
    if len(anchor) < 2 or len(test) < 2:
        return None
    low = max(min(d for _, d in anchor), min(d for _, d in test))
    high = min(max(d for _, d in anchor), max(d for _, d in test))
    if high <= low:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = function([r for r, _ in anchor], [d for _, d in anchor], [r for r, _ in test],
                             [d for _, d in test], method=method, require_matching_points=False)  # fmt: skip
    except (ValueError, ZeroDivisionError, FloatingPointError, AssertionError):
        # bjontegaard asserts that quality rises with rate; a non-monotone curve has no BD number
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def compare(anchor: dict[str, Any], test: dict[str, Any], method: str = "akima") -> dict[str, Any]:
    """BD-rate (% bits, PSNR and MS-SSIM dB) and BD-PSNR (dB) of ``test`` against ``anchor``."""
    return {
        "name": test["name"],
        "file": test["file"],
        "bd_rate_psnr": _bd(
            bjontegaard.bd_rate, anchor["bpp"], anchor["psnr"], test["bpp"], test["psnr"], method
        ),
        "bd_psnr": _bd(bjontegaard.bd_psnr, anchor["bpp"], anchor["psnr"], test["bpp"], test["psnr"], method),
        "bd_rate_ms_ssim": _bd(
            bjontegaard.bd_rate, anchor["bpp"], anchor["ms_ssim_db"], test["bpp"], test["ms_ssim_db"], method
        ),  # fmt: skip
    }


def build_argument_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m gabic bdrate", description=__doc__)
    parser.add_argument("files", nargs="+", help="results JSON files; the first is the anchor")
    parser.add_argument("--method", choices=METHODS, default="akima", help="interpolation (bjontegaard)")
    parser.add_argument("--output", help="write the BD table as JSON here")
    parser.add_argument("--plot", help="write the RD plot to PLOT.html (and PLOT.png when possible)")
    parser.add_argument("--title", default="Rate-distortion")
    return parser


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def run(args: argparse.Namespace) -> int:
    if len(args.files) < 2 and not args.plot:
        raise ValueError("give at least two result files (the first is the anchor)")
    curves = [load_curve(path) for path in args.files]
    anchor = curves[0]
    rows = [compare(anchor, curve, args.method) for curve in curves[1:]]
    width = max([len(c["name"]) for c in curves] + [8])
    print(f"anchor: {anchor['name']} ({anchor['file']}), interpolation: {args.method}")
    print(f"{'codec':<{width}} {'BD-rate PSNR':>13} {'BD-PSNR':>9} {'BD-rate MS-SSIM':>16}")
    for row in rows:
        print(f"{row['name']:<{width}} {_fmt(row['bd_rate_psnr'], '+.2f') + ' %':>13} "
              f"{_fmt(row['bd_psnr'], '+.3f') + ' dB':>9} {_fmt(row['bd_rate_ms_ssim'], '+.2f') + ' %':>16}")  # fmt: skip
    report: dict[str, Any] = {"anchor": {"name": anchor["name"], "file": anchor["file"]},
                              "method": args.method, "comparisons": rows}  # fmt: skip
    if args.plot:
        named: dict[str, dict[str, Any]] = {}
        for curve in curves:  # two files may carry the same name
            name = curve["name"] if curve["name"] not in named else f"{curve['name']} ({curve['file']})"
            named[name] = curve
        figure = rd_figure(
            named, metrics=("psnr", "ms_ssim_db"), title=args.title, height=500, panel_width=600
        )
        saved = save_figure(figure, args.plot)
        report["plot"] = saved
        print(f"wrote {saved['html']}" + (f" and {saved['png']}" if saved["png"] else ""))
        if saved["png_error"]:
            print(f"note: PNG not written (HTML only): {saved['png_error']}")
    if args.output:
        write_json(args.output, report)
    return 0
