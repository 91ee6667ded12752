"""Training against validation loss over the variable-rate rounds, one Markdown table per architecture.

    python training/learning_curve.py

Reads the run records ``training/runs/<arch>-small-vr-cpu<round>.json`` (every round there is,
from 7 on) and, where they exist, ``results/bsds500-val/bd-<arch>-vr-r<round>-vs-r<parent>.json``, where
the parent is the round whose files this round started from (its record's ``parent_record``; the
round before, except where a round's folders were gone and it started from the shipped files).
Per round:

- steps, and the steps of all variable-rate rounds in its line (this one, its parent, the parent's
  parent, …);
- the training loss: the mean over the logged steps in the last 10 % of the run's steps (the
  record's ``tail``), at whatever qualities those steps drew;
- the training loss at the validation's quality mix: the validation loss is the geometric mean of
  the losses at qualities 1..4, a training step's loss is at its own quality q. Each tail step's
  loss is divided by the validation loss at q of the selected step (interpolated log-linearly
  between the integer qualities); the geometric mean of those ratios times the validation loss is
  the training loss on the validation's footing. ``±`` is one standard error of that mean
  (from the spread of the ratios);
- the validation loss (24 centre crops of BSDS500 val) at the selected step (the lowest), and the
  gap: validation − training at the validation's mix;
- the BD-rate on PSNR of this round against its parent on the first 24 val photos with real
  bitstreams, as the results file says (— where there is none);

and under the table the least-squares slope of the gap over the rounds, with its standard error.

A second table per architecture puts each round against the classic codecs: the BD-rate on PSNR of
the round's files (``results/bsds500-val/<arch>-small-vr-r<round>[-reference].json``, the first 24
val photos, real bitstreams; the reference layout where a round was evaluated in it) against
Pillow's JPEG and WebP on the same photos (``jpeg.json``, ``webp.json`` there), and the round's gain
against its parent per 1 000 of its steps.

Records converted from the former thinned logs hold in their tail only the steps that log kept
(about a third); records written from a live run hold every step.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "training" / "runs"
BD_RESULTS = ROOT / "results" / "bsds500-val"
ARCHS = ("gabic", "zou2022")


def rounds(arch: str, records: Path = RECORDS) -> list[tuple[int, dict[str, Any]]]:
    """(round, record) of every variable-rate round of ``arch``, in order."""
    found = []
    for path in records.glob(f"{arch}-small-vr-cpu*.json"):
        match = re.fullmatch(rf"{arch}-small-vr-cpu(\d+)\.json", path.name)
        if match:
            found.append((int(match.group(1)), json.loads(path.read_text())))
    return sorted(found, key=lambda item: item[0])


def parent_round(record: dict[str, Any]) -> int | None:
    """The variable-rate round whose files ``record``'s run started from (``None``: another kind)."""
    match = re.search(r"-vr-cpu(\d+)\.json$", str(record.get("lineage", {}).get("parent_record") or ""))
    return int(match.group(1)) if match else None


def validation_at(losses: dict[int, float], quality: float) -> float:
    """The validation loss at ``quality`` (1..4), log-linear between the integer qualities."""
    low = min(max(int(math.floor(quality)), 1), max(losses) - 1)
    weight = quality - low
    return math.exp((1 - weight) * math.log(losses[low]) + weight * math.log(losses[low + 1]))


def round_numbers(record: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one round's row (see the module docstring)."""
    selected = min(record["validation"], key=lambda v: v["loss"])
    tail = record["tail"]
    numbers: dict[str, Any] = {"steps": record["final_step"], "selected_step": selected["step"],
                               "val": selected["loss"], "tail_steps": len(tail["loss"]),
                               "train": statistics.fmean(tail["loss"]), "train_mix": None, "train_mix_se": None}  # fmt: skip
    if "quality" in tail and "qualities" in selected:
        per_quality = {int(q): v["loss"] for q, v in selected["qualities"].items()}
        ratios = [math.log(loss / validation_at(per_quality, q)) for loss, q in zip(tail["loss"], tail["quality"], strict=True)]  # fmt: skip
        mix = selected["loss"] * math.exp(statistics.fmean(ratios))
        numbers["train_mix"] = mix
        numbers["train_mix_se"] = mix * statistics.stdev(ratios) / math.sqrt(len(ratios))
    return numbers


def bd_rate(arch: str, this: int, before: int, results: Path = BD_RESULTS) -> float | None:
    path = results / f"bd-{arch}-vr-r{this}-vs-r{before}.json"
    if not path.is_file():
        return None
    comparisons = json.loads(path.read_text())["comparisons"]
    return comparisons[0]["bd_rate_psnr"] if len(comparisons) == 1 else None


def gap_trend(points: list[tuple[int, float, float]]) -> tuple[float, float] | None:
    """Least-squares slope of the gap over the rounds, per round, and its standard error from the
    gaps' own standard errors (taken as independent). ``points``: (round, gap, s.e.)."""
    if len(points) < 3:
        return None
    mean = statistics.fmean(n for n, _, _ in points)
    spread = sum((n - mean) ** 2 for n, _, _ in points)
    slope = sum((n - mean) * gap for n, gap, _ in points) / spread
    return slope, math.sqrt(sum((n - mean) ** 2 * se**2 for n, _, se in points)) / spread


def lineage(arch: str, records: Path = RECORDS) -> Iterator[tuple[int, dict[str, Any], int | None, int]]:
    """``(round, record, parent, cumulative steps)`` of every round of ``arch``, in order: the parent
    is the round whose files it started from (the round before where its record names none that
    is known), the cumulative steps those of its line (this round, its parent, the parent's parent, …)."""
    line_steps: dict[int, int] = {}  # round -> steps of its line
    previous = None
    for number, record in rounds(arch, records):
        parent = parent_round(record)
        parent = parent if parent in line_steps else previous
        line_steps[number] = line_steps.get(parent, 0) + record["final_step"]
        yield number, record, parent, line_steps[number]
        previous = number


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f} %"


def _row(cells: list[str]) -> str:
    """A Markdown table row: thousands apart by a space, minus signs as in the prose."""
    return "| " + " | ".join(c.replace(",", " ").replace("-", "−") for c in cells) + " |"


def table(arch: str, records: Path = RECORDS, results: Path = BD_RESULTS) -> list[str]:
    lines = [f"**{arch}-small-vr**", "",
             "| round | steps | cumulative | train loss, last 10 % | train at val mix | "
             "val loss (step) | gap val − train | BD-rate vs its parent round |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    gaps = []
    for number, record, parent, cumulative in lineage(arch, records):
        row = round_numbers(record)
        if row["train_mix"] is None:
            mix, gap = "n/a", row["val"] - row["train"]
        else:
            mix, gap = f"{row['train_mix']:.3f} ± {row['train_mix_se']:.3f}", row["val"] - row["train_mix"]
            gaps.append((number, gap, row["train_mix_se"]))
        bd = bd_rate(arch, number, parent, results) if parent is not None else None
        cells = [str(number), f"{row['steps']:,}", f"{cumulative:,}",
                 f"{row['train']:.3f} ({row['tail_steps']} steps)", mix,
                 f"{row['val']:.3f} ({row['selected_step']:,})", f"{gap:+.3f}", _percent(bd)]  # fmt: skip
        lines.append(_row(cells))
    trend = gap_trend(gaps)
    if trend is not None:
        text = f"{trend[0]:+.3f} ± {trend[1]:.3f}".replace("-", "−")
        lines += ["", f"Gap trend (least squares over rounds {gaps[0][0]}–{gaps[-1][0]}): {text} per round."]
    return lines


def round_results(arch: str, number: int, results: Path = BD_RESULTS) -> Path | None:
    """The result file of round ``number``'s files on the val photos (reference layout first)."""
    for name in (f"{arch}-small-vr-r{number}-reference.json", f"{arch}-small-vr-r{number}.json"):
        if (results / name).is_file():
            return results / name
    return None


def classic_table(arch: str, records: Path = RECORDS, results: Path = BD_RESULTS) -> list[str]:
    """Each round against JPEG and WebP, and its gain per 1 000 steps (the module docstring)."""
    sys.path.insert(0, str(ROOT))
    from gabic.eval.bd import compare, load_curve

    anchors = {name: load_curve(results / f"{name}.json") for name in ("jpeg", "webp")
               if (results / f"{name}.json").is_file()}  # fmt: skip
    lines = [f"**{arch}-small-vr against the classic codecs**", "",
             "| round | steps | cumulative | layout | vs JPEG | vs WebP | vs its parent | per 1 000 steps |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for number, record, parent, cumulative in lineage(arch, records):
        steps = record["final_step"]
        path = round_results(arch, number, results)
        layout, against = "—", {"jpeg": None, "webp": None}
        if path is not None:
            points = json.loads(path.read_text())["details"]["points"]
            layout = points[0].get("layout") or "not recorded"
            curve = load_curve(path)
            against = {name: compare(anchor, curve)["bd_rate_psnr"] for name, anchor in anchors.items()}
        bd = bd_rate(arch, number, parent, results) if parent is not None else None
        cells = [str(number), f"{steps:,}", f"{cumulative:,}", layout, _percent(against.get("jpeg")),
                 _percent(against.get("webp")), _percent(bd), _percent(None if bd is None else bd * 1000 / steps)]  # fmt: skip
        lines.append(_row(cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    del argv
    for arch in ARCHS:
        if rounds(arch):
            print("\n".join(table(arch)), end="\n\n")
            print("\n".join(classic_table(arch)), end="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
