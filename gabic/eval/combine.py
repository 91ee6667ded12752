"""Join evaluations of one codec on disjoint parts of an image folder into one result file.

A long evaluation (encoder search on a hundred photos takes hours on a CPU) can run in parts,
``python -m gabic eval ... --skip-images N --max-images M``, in different sessions; this joins
their JSON files as if one run had covered every image:

    python -m gabic combine part-0-24.json part-24-62.json part-62-100.json --output all.json

The parts must hold the same RD points (same model or codec, quality and settings: every key of a
point except the averages; in any order) over different images of the same folder. The averages are computed
again from the per-image numbers; the times add up.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..records import write_json
from .rd import summarise, to_compressai_json

#: Keys of a point that are averages over its images (recomputed), not settings that must agree.
AVERAGED = {"bpp", "bpp_estimated", "psnr", "ms_ssim", "encode_ms", "decode_ms",
            "decode_matches_forward", "decode_max_abs_diff", "per_image"}  # fmt: skip


def _settings(point: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in point.items() if key not in AVERAGED}


def combine_evaluations(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result (the format of ``python -m gabic eval --output``) from ``parts``: results of the
    same points over disjoint images of the same folder. ``ValueError`` names what disagrees."""
    if len(parts) < 2:
        raise ValueError("combine needs at least two result files")
    for part in parts:
        if "points" not in part.get("details", {}) or not part["details"]["points"]:
            raise ValueError(
                f"{part.get('name', '?')}: not a result file of python -m gabic eval (no per-image points)"
            )
    first = parts[0]["details"]
    datasets = {part["details"]["dataset"] for part in parts}
    if len(datasets) > 1:
        raise ValueError(f"the parts cover different folders: {sorted(datasets)}")
    settings = [_settings(p) for p in first["points"]]
    ordered: list[list[dict[str, Any]]] = []  # each part's points in the first part's order
    seen: set[str] = set()
    for part in parts:
        points = part["details"]["points"]
        by_setting = [next((p for p in points if _settings(p) == setting), None) for setting in settings]
        if len(points) != len(settings) or any(p is None for p in by_setting):
            raise ValueError(f"{part['name']}: its RD points differ from the first part's ({settings})")
        names = {entry["image"] for entry in points[0]["per_image"]}
        if names & seen:
            raise ValueError(f"{part['name']}: images in more than one part: {sorted(names & seen)[:5]}")
        seen |= names
        ordered.append(by_setting)
    points = []
    for index, setting in enumerate(settings):
        per_image = [entry for part in ordered for entry in part[index]["per_image"]]
        per_image.sort(key=lambda entry: entry["image"])
        points.append({**setting, **summarise(per_image), "per_image": per_image})
    evaluation = {"name": parts[0]["name"], "description": parts[0]["description"], "points": points,
                  "device": first["device"]}  # fmt: skip
    elapsed = sum(float(part["details"].get("elapsed_s", 0.0)) for part in parts)
    combined = to_compressai_json(evaluation, Path(first["dataset"]), elapsed)
    for key in ("torch", "threads", "machine"):  # as the parts recorded them (not this process's)
        values = {str(part["details"].get(key)) for part in parts}
        combined["details"][key] = first.get(key) if len(values) == 1 else " / ".join(sorted(values))
    return combined


def build_argument_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m gabic combine", description=__doc__)
    parser.add_argument("parts", nargs="+", help="result files of python -m gabic eval")
    parser.add_argument("--output", required=True, help="write the joined result here")
    return parser


def run(args: argparse.Namespace) -> int:
    parts = []
    for path in args.parts:
        try:
            parts.append(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(
                f"{Path(path).name}: not a readable result file ({error.__class__.__name__})"
            ) from None
    combined = combine_evaluations(parts)
    write_json(args.output, combined)
    points = combined["details"]["points"]
    print(f"{combined['name']}: {len(args.parts)} parts, {combined['details']['images']} images, "
          f"{len(points)} points -> {args.output}")  # fmt: skip
    return 0
