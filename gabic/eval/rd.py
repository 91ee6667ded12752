"""Evaluate a learned model or a classic codec on an image folder, the way the paper does.

Learned models (``--model``): a shipped name (all shipped qualities, or
``--quality``), our ``.safetensors`` files, or the authors' ``.pth.tar``
checkpoints (``--arch``); several files give several RD points. Every image
is really encoded to a container (:mod:`gabic.codec`) and decoded again:
``bpp`` is the container's size, ``bpp_estimated`` comes from the likelihoods
of the same encoder pass, PSNR and MS-SSIM are on 8-bit images, and the
decoded image is checked against the eval-mode forward reconstruction.

Classic codecs (``--codec jpeg|webp|avif``): Pillow at a sweep of qualities
(:mod:`gabic.classic`).

The JSON follows CompressAI's results format (``name``, ``description``,
``results`` with one entry per RD point; times in seconds) and keeps our
per-image numbers under ``details``.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .. import codec, zoo
from ..codec.images import image_to_tensor, list_images, load_image
from ..codec.search import effort_argument
from ..metrics import msssim, psnr
from ..records import write_json
from . import classic

#: Display names of the classic codecs in result files and plots.
CLASSIC_NAMES = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}
#: Largest |decoded - forward| accepted as "the decoder reproduces the forward pass".
DECODE_TOLERANCE = 1e-4


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def _json_number(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return _json_number(obj)


def evaluate_model_on_image(model: torch.nn.Module, image: Any, check: bool = True,
                            pad: str = codec.DEFAULT_PAD, layout: str = codec.DEFAULT_LAYOUT,
                            effort: int = 0) -> dict[str, Any]:  # fmt: skip
    """Real encode + decode of one image (padded by ``pad`` in ``layout``, ``effort`` steps of
    encoder search); returns its metrics (times in ms). The check compares the decoded image with
    the forward reconstruction, or with ``effort`` (whose latents no forward pass gives) with the
    encoder's own reconstruction (:func:`~gabic.codec.encode_and_reconstruct`)."""
    x = image_to_tensor(load_image(image))
    height, width = x.shape[-2:]
    pixels = height * width
    device = next(model.parameters()).device
    _sync(device)
    start = time.perf_counter()
    if effort:
        data, likelihoods, from_encoder = codec.encode_and_reconstruct(model, x, True, pad, layout, effort)
    else:
        data, likelihoods = codec.encode_tensor(model, x, with_likelihoods=True, pad=pad, layout=layout)
    _sync(device)
    encode_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    x_hat = codec.decompress_tensor(data, model)
    _sync(device)
    decode_ms = (time.perf_counter() - start) * 1000
    assert likelihoods is not None
    bits = sum(float((-torch.log2(likelihoods[key])).sum()) for key in ("y", "z"))
    x_hat = x_hat.cpu()
    result = {
        "bytes": len(data),
        "bpp": len(data) * 8 / pixels,
        "bpp_estimated": bits / pixels,
        "psnr": psnr(x, x_hat),
        "ms_ssim": msssim(x, x_hat),
        "encode_ms": encode_ms,
        "decode_ms": decode_ms,
        "width": width,
        "height": height,
    }
    if check:
        forward = from_encoder.cpu() if effort else codec.forward_reconstruction(model, x, pad, layout).cpu()
        difference = float((forward - x_hat).abs().max())
        result["decode_max_abs_diff"] = difference
        result["decode_matches_forward"] = difference <= DECODE_TOLERANCE
    return result


def summarise(per_image: list[dict[str, Any]]) -> dict[str, Any]:
    """The averages of one RD point over its images (and whether every image decoded exactly)."""
    keys = ("bpp", "bpp_estimated", "psnr", "ms_ssim", "encode_ms", "decode_ms")
    summary = {key: _finite_mean([p[key] for p in per_image]) for key in keys if key in per_image[0]}
    if "decode_matches_forward" in per_image[0]:
        summary["decode_matches_forward"] = all(p["decode_matches_forward"] for p in per_image)
        summary["decode_max_abs_diff"] = max(p["decode_max_abs_diff"] for p in per_image)
    return summary


def _model_specs(args: argparse.Namespace) -> list[tuple[str, float | None]]:
    specs: list[tuple[str, float | None]] = []
    for spec in args.model:
        if spec in zoo.SHIPPED:
            qualities = args.quality or zoo.available(spec)
            if not qualities:
                raise FileNotFoundError(f"no weights of {spec} are shipped (looked in {zoo.weights_dir()})")
            specs.extend((spec, q) for q in qualities)
        elif spec.endswith(".safetensors") and args.quality:  # a variable-rate file: one point per quality
            specs.extend((spec, q) for q in args.quality)
        else:
            specs.append((spec, None))
    return specs


def evaluate_models(args: argparse.Namespace, images: list[Path]) -> dict[str, Any]:
    points = []
    description = []
    device = "cpu"
    for spec, quality in _model_specs(args):
        model = zoo.load_model(spec, quality, args.arch, args.device)
        if args.k is not None:
            model = codec.with_k(model, args.k)
        model_id, model_quality = codec.model_identity(model)
        device = str(next(model.parameters()).device)
        label = (f"{model_id} {codec.format_quality(model_quality)}" if model_quality
                 else f"{model_id} ({Path(spec).name})")  # fmt: skip
        if not args.no_warmup:  # first call builds rANS tables and warms the allocator
            evaluate_model_on_image(model, images[0], False, args.pad, args.layout)  # (no search: warm-up)
        per_image = []
        for path in tqdm(images, desc=label, unit="img", disable=args.no_progress):
            per_image.append(
                {
                    "image": path.name,
                    **evaluate_model_on_image(
                        model, path, not args.no_check, args.pad, args.layout, args.effort
                    ),  # fmt: skip
                }
            )
        points.append({"model": spec, "model_id": model_id, "arch": model.arch, "quality": model_quality,
                       "pad": args.pad, "layout": args.layout, "effort": args.effort,
                       "k": model.k if model.arch == "gabic" else None,
                       **summarise(per_image), "per_image": per_image})  # fmt: skip
        description.append(label)
    name = args.name or (points[0]["model_id"] if points else "model")
    return {"name": name, "description": "learned codec: " + ", ".join(description), "points": points,
            "device": device}  # fmt: skip


def evaluate_classic(args: argparse.Namespace, images: list[Path]) -> dict[str, Any]:
    name = args.codec
    qualities = args.qualities or classic.DEFAULT_QUALITIES[name]
    loaded = [(path, load_image(path)) for path in images]
    by_quality: dict[int, list[dict[str, Any]]] = {q: [] for q in qualities}
    total = len(loaded) * len(qualities)
    with tqdm(total=total, desc=name, unit="enc", disable=args.no_progress) as bar:
        for path, image in loaded:
            for quality in qualities:
                point = classic.encode_classic(image, name, quality)
                point.pop("reconstruction")
                point.pop("codec")
                point.pop("quality")
                by_quality[quality].append({"image": path.name, **point})
                bar.update()
    points = [{"codec": name, "quality": q, **summarise(p), "per_image": p} for q, p in by_quality.items()]
    points.sort(key=lambda p: p["bpp"])
    settings = classic.CODECS[name][1]
    return {"name": args.name or CLASSIC_NAMES[name],
            "description": f"Pillow {name.upper()} {settings or 'default settings'}, qualities {qualities}",
            "points": points, "device": "cpu"}  # fmt: skip


def to_compressai_json(evaluation: dict[str, Any], dataset: Path, elapsed: float) -> dict[str, Any]:
    """``{"name", "description", "results": {...}, "details": {...}}`` with one entry per RD point."""
    points = evaluation["points"]
    results = {
        "bpp": [p["bpp"] for p in points],
        "psnr-rgb": [p["psnr"] for p in points],
        "ms-ssim-rgb": [p["ms_ssim"] for p in points],
        "encoding_time": [p["encode_ms"] / 1000 for p in points],
        "decoding_time": [p["decode_ms"] / 1000 for p in points],
    }
    if "bpp_estimated" in points[0]:
        results["bpp-estimated"] = [p["bpp_estimated"] for p in points]
    details = {
        "dataset": str(dataset),
        "images": len(points[0]["per_image"]),
        "device": evaluation["device"],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "elapsed_s": elapsed,
        "points": points,
    }
    return _clean({"name": evaluation["name"], "description": evaluation["description"],
                   "results": results, "details": details})  # fmt: skip


def build_argument_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m gabic eval", description=__doc__)
    parser.add_argument("dataset", help="folder of images (png, jpg, ...)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", nargs="+",
                      help="shipped name (gabic-small, zou2022-small) or weights files (.safetensors, .pth.tar)")  # fmt: skip
    what.add_argument("--codec", choices=sorted(classic.CODECS), help="classic codec through Pillow")
    parser.add_argument("--quality", type=float, nargs="+",
                        help="model qualities 1..4 (default: all shipped; any value in between for a "
                        "variable-rate model)")  # fmt: skip
    parser.add_argument("--pad", choices=sorted(codec.PAD_MODES), default=codec.DEFAULT_PAD,
                        help="padding to a multiple of 64: edge (default) or zero (the reference codecs' rule)")  # fmt: skip
    parser.add_argument("--layout", choices=codec.LAYOUTS, default=codec.DEFAULT_LAYOUT,
                        help="compact (default): image in the top-left corner, latent cells more than one "
                        "cell beyond it not coded; reference: padding split evenly, every cell coded")  # fmt: skip
    parser.add_argument(
        "--effort",
        type=effort_argument,
        default=0,
        help="steps of encoder search per image (gabic.codec.search; default 0: none)",
    )
    parser.add_argument("--arch", choices=["gabic", "zou2022"], help="architecture of a .pth.tar checkpoint")
    parser.add_argument("--k", type=int, help="GABIC neighbours per node (default: trained k)")
    parser.add_argument("--qualities", type=int, nargs="+", help="classic-codec qualities (0..100)")
    parser.add_argument("--skip-images", type=int, default=0,
                        help="leave out the first N images (sorted by name); with --max-images, a slice of "
                        "the folder (parts are joined with python -m gabic combine)")  # fmt: skip
    parser.add_argument("--max-images", type=int, help="evaluate only the first N images (sorted by name)")
    parser.add_argument("--output", help="write the JSON results here")
    parser.add_argument("--name", help="name of the curve in the JSON (default: model id / codec)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--no-check", action="store_true",
                        help="skip comparing the decoded image with the forward reconstruction")  # fmt: skip
    parser.add_argument("--no-warmup", action="store_true", help="time the first image cold")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = Path(args.dataset)
    images = list_images(dataset)[max(0, args.skip_images) :]
    if args.max_images is not None:
        images = images[: max(0, args.max_images)]
    if not images:
        raise FileNotFoundError(f"{dataset}: no images found")
    start = time.perf_counter()
    evaluation = evaluate_classic(args, images) if args.codec else evaluate_models(args, images)
    output = to_compressai_json(evaluation, dataset, time.perf_counter() - start)
    print(f"{output['name']} on {len(images)} images of {dataset}:")
    print(
        f"{'point':>12} {'bpp':>8} {'est.bpp':>8} {'PSNR':>7} {'MS-SSIM':>8} {'enc ms':>8} {'dec ms':>8}  decode"
    )
    for point in output["details"]["points"]:
        check = point.get("decode_matches_forward")
        status = "-" if check is None else ("exact" if check else f"DIFF {point['decode_max_abs_diff']:.2g}")
        print(f"{codec.format_quality(point['quality']):>12} {_fmt(point['bpp'], '.4f'):>8} "
              f"{_fmt(point.get('bpp_estimated'), '.4f'):>8} {_fmt(point['psnr'], '.2f'):>7} "
              f"{_fmt(point['ms_ssim'], '.4f'):>8} {_fmt(point['encode_ms'], '.1f'):>8} "
              f"{_fmt(point['decode_ms'], '.1f'):>8}  {status}")  # fmt: skip
    if args.output:
        write_json(args.output, output)
    failed = [p for p in output["details"]["points"] if p.get("decode_matches_forward") is False]
    return 2 if failed else 0
