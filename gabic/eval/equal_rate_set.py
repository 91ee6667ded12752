"""GABIC against Zou2022 at the same real rate, over a folder of photos: ``python -m gabic
equal-rate``.

For every photo and quality asked for, GABIC codes the photo at that quality and Zou2022's
quality is searched for the same real bits per pixel (:func:`~gabic.eval.equal_rate`). At one
rate, the PSNR and MS-SSIM differences say which model codes the photo better, and the bit
difference map (paper Fig. 5 colours: red where GABIC spends more) where their bits go apart.
Writes one JSON row per photo and quality with the means per quality and, optionally, a contact
sheet of the difference maps drawn into the photos (the first quality, the first photos).

Example (two variable-rate models: shipped names or ``.safetensors`` files)::

    python -m gabic equal-rate ../shared/data/bsds500/val --quality 2.5 --max-images 24 \\
        --output results/equal-rate.json --figure results/equal-rate.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm import tqdm

from .. import codec, viz, zoo
from ..codec.images import list_images, load_image
from ..models import ChannelwiseAttentionCodec
from .equal_rate import EqualRate, equal_rate

#: Photos on the contact sheet (:func:`contact_sheet`), and the width of each.
SHEET_PHOTOS = 6
SHEET_WIDTH = 320


def compare_at_equal_rate(gabic: ChannelwiseAttentionCodec, zou2022: ChannelwiseAttentionCodec,
                          photo: Image.Image, quality: float) -> EqualRate:  # fmt: skip
    """GABIC at ``quality`` and Zou2022 at the quality of the same real bpp on ``photo`` (both
    variable-rate models, lent at each quality without a reload: :func:`gabic.codec.with_quality`)."""
    return equal_rate(lambda q: codec.with_quality(gabic, q), lambda q: codec.with_quality(zou2022, q),
                      photo, quality=quality)  # fmt: skip


def row_of(name: str, result: EqualRate) -> dict[str, Any]:
    """One JSON row: both models' quality, real bpp, PSNR and MS-SSIM, GABIC's PSNR gain (dB) at
    the common rate, the rate left apart (% of GABIC's) and the share of pixels where GABIC spends
    more bits."""
    gabic, zou2022 = result.reference, result.matched
    return {
        "image": name, "quality": gabic.quality,
        "gabic_bpp": gabic.bpp, "gabic_psnr": gabic.psnr, "gabic_ms_ssim": gabic.ms_ssim,
        "zou2022_quality": zou2022.quality, "zou2022_bpp": zou2022.bpp, "zou2022_psnr": zou2022.psnr,
        "zou2022_ms_ssim": zou2022.ms_ssim,
        "psnr_gain_db": -result.psnr_difference,
        "bpp_gap_percent": 100 * result.bpp_difference / gabic.bpp,
        "gabic_more_bits_share": float((result.bit_difference() > 0).mean()),
        "codings": len(result.search.steps),
    }  # fmt: skip


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per quality: photos, mean and median PSNR gain of GABIC, photos where it gains, and the
    mean absolute rate gap (%)."""
    summary: dict[str, dict[str, Any]] = {}
    for quality in sorted({row["quality"] for row in rows}):
        gains = [row["psnr_gain_db"] for row in rows if row["quality"] == quality]
        gaps = [abs(row["bpp_gap_percent"]) for row in rows if row["quality"] == quality]
        summary[f"{quality:g}"] = {
            "photos": len(gains), "mean_psnr_gain_db": statistics.fmean(gains),
            "median_psnr_gain_db": statistics.median(gains), "gabic_ahead": sum(g > 0 for g in gains),
            "mean_abs_bpp_gap_percent": statistics.fmean(gaps),
        }  # fmt: skip
    return summary


def difference_picture(result: EqualRate, opacity: float = 0.75) -> Image.Image:
    """The bit difference map of ``result`` drawn into its photo (:func:`gabic.viz.bits_picture`)."""
    maps = viz.bit_maps(result.reference, result.matched, "total")
    return viz.bits_picture(maps, "difference", result.reference.original, opacity)


def contact_sheet(pictures: Sequence[Image.Image], columns: int = 3, width: int = SHEET_WIDTH) -> Image.Image:
    """``pictures`` side by side, ``columns`` to a row, each scaled to ``width`` px wide."""
    if not pictures:
        raise ValueError("no pictures for the contact sheet")
    scaled = [p.resize((width, max(1, round(p.height * width / p.width)))) for p in pictures]
    row_height = max(p.height for p in scaled)
    rows = (len(scaled) + columns - 1) // columns
    sheet = Image.new("RGB", (width * min(columns, len(scaled)), row_height * rows), "white")
    for i, picture in enumerate(scaled):
        sheet.paste(picture, ((i % columns) * width, (i // columns) * row_height))
    return sheet


def build_argument_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m gabic equal-rate", description=__doc__)
    parser.add_argument("dataset", help="folder of images (png, jpg, ...)")
    parser.add_argument("--gabic", default="gabic-small-vr",
                        help="variable-rate GABIC: shipped name or .safetensors file (default gabic-small-vr)")  # fmt: skip
    parser.add_argument("--zou2022", default="zou2022-small-vr",
                        help="variable-rate Zou2022: shipped name or .safetensors file (default zou2022-small-vr)")  # fmt: skip
    parser.add_argument("--quality", type=float, nargs="+", default=[2.5],
                        help="GABIC's qualities, 1..4 (default 2.5)")  # fmt: skip
    parser.add_argument("--max-images", type=int, help="only the first N images (sorted by name)")
    parser.add_argument("--output", help="write the JSON results here")
    parser.add_argument("--figure", help="write a contact sheet of the difference maps here (PNG)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _load(spec: str, arch: str, quality: float, device: str | None) -> ChannelwiseAttentionCodec:
    model = zoo.load_model(spec, quality, arch, device)
    if model.arch != arch:
        raise ValueError(f"{spec} is a {model.arch} model, not {arch}")
    if not model.config.variable_rate:
        raise ValueError(f"{spec} is a one-rate model: the equal-rate search needs a variable-rate one")
    return model


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    for quality in args.quality:
        if not 1 <= quality <= 4:
            raise ValueError(f"quality must be in 1..4, got {quality:g}")
    images = list_images(Path(args.dataset))
    if args.max_images is not None:
        images = images[: max(0, args.max_images)]
    if not images:
        raise FileNotFoundError(f"{args.dataset}: no images found")
    gabic = _load(args.gabic, "gabic", args.quality[0], args.device)
    zou2022 = _load(args.zou2022, "zou2022", args.quality[0], args.device)
    start = time.perf_counter()
    rows, pictures = [], []
    for path in tqdm(images, desc="equal rate", unit="img", disable=args.no_progress):
        photo = load_image(path)
        for quality in args.quality:
            result = compare_at_equal_rate(gabic, zou2022, photo, quality)
            rows.append(row_of(path.name, result))
            if args.figure and quality == args.quality[0] and len(pictures) < SHEET_PHOTOS:
                pictures.append(difference_picture(result))
    summary = summarise(rows)
    output = {
        "what": "GABIC at each quality against Zou2022 at the quality of the same real bpp (real bitstreams)",
        "dataset": str(args.dataset), "images": len(images),
        "models": {"gabic": args.gabic, "zou2022": args.zou2022,
                   "gabic_id": codec.model_identity(gabic)[0], "zou2022_id": codec.model_identity(zou2022)[0]},
        "device": str(next(gabic.parameters()).device), "threads": torch.get_num_threads(),
        "elapsed_s": time.perf_counter() - start, "summary": summary, "rows": rows,
    }  # fmt: skip
    for quality, line in summary.items():
        print(f"q{quality}: {line['photos']} photos, GABIC {line['mean_psnr_gain_db']:+.3f} dB at equal rate "
              f"(median {line['median_psnr_gain_db']:+.3f}), ahead on {line['gabic_ahead']}, "
              f"rates {line['mean_abs_bpp_gap_percent']:.2f} % apart")  # fmt: skip
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(output, indent=1) + "\n")
        print(f"wrote {args.output}")
    if args.figure:
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(pictures).save(args.figure)
        print(
            f"wrote {args.figure} (the first {len(pictures)} photos at q{args.quality[0]:g}: red where GABIC spends more)"
        )
    return 0
