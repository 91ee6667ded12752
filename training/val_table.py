"""Print the README's BSDS500 val tables (Markdown) from the files in results/bsds500-val/
(the first 24 photos) or another folder of the same files (results/bsds500-val-all/: all 100).

python training/val_table.py [FOLDER]

The files come from ``training/evaluate_val.sh`` (fixed, vr, classic, bd); a table row whose
file is missing is left out. Every row is of the reference layout (container versions 1 and 2)
except the one marked "compact layout" (gabic.codec.layout).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results" / "bsds500-val"
CURVES = (
    ("gabic-small, zero padding", "gabic-small-pad-zero.json"),
    ("gabic-small, edge padding", "gabic-small-pad-edge.json"),
    ("gabic-small-vr round 7 (edge)", "gabic-small-vr-r7.json"),
    ("gabic-small-vr round 8 (edge)", "gabic-small-vr-r8.json"),
    ("gabic-small-vr round 9 (edge)", "gabic-small-vr-r9.json"),
    ("gabic-small-vr round 10 (edge)", "gabic-small-vr-r10.json"),
    ("gabic-small-vr round 11 (edge)", "gabic-small-vr-r11.json"),
    ("gabic-small-vr (edge, reference layout)", "gabic-small-vr-reference.json"),
    ("gabic-small-vr (edge, compact layout)", "gabic-small-vr.json"),
    ("zou2022-small, zero padding", "zou2022-small-pad-zero.json"),
    ("zou2022-small, edge padding", "zou2022-small-pad-edge.json"),
    ("zou2022-small-vr round 7 (edge)", "zou2022-small-vr-r7.json"),
    ("zou2022-small-vr round 8 (edge)", "zou2022-small-vr-r8.json"),
    ("zou2022-small-vr round 9 (edge)", "zou2022-small-vr-r9.json"),
    ("zou2022-small-vr round 10 (edge)", "zou2022-small-vr-r10.json"),
    ("zou2022-small-vr round 11 (edge)", "zou2022-small-vr-r11.json"),
    ("zou2022-small-vr (edge, reference layout)", "zou2022-small-vr-reference.json"),
    ("zou2022-small-vr (edge, compact layout)", "zou2022-small-vr.json"),
)
#: (BD file, test curve name in it, label)
COMPARISONS = (
    ("bd-gabic-edge-vs-zero.json", "gabic-small", "gabic-small: edge vs zero padding"),
    ("bd-zou2022-edge-vs-zero.json", "zou2022-small", "zou2022-small: edge vs zero padding"),
    ("bd-gabic-vr-vs-one-rate.json", "gabic-small-vr", "gabic-small-vr vs gabic-small (edge)"),
    ("bd-zou2022-vr-vs-one-rate.json", "zou2022-small-vr", "zou2022-small-vr vs zou2022-small (edge)"),
    ("bd-gabic-vs-zou2022.json", "gabic-small", "gabic-small vs zou2022-small (edge)"),
    ("bd-gabic-vs-zou2022-vr.json", "gabic-small-vr", "gabic-small-vr vs zou2022-small-vr"),
    ("bd-gabic-vr-r8-vs-r7.json", "gabic-small-vr", "gabic-small-vr: round 8 vs round 7"),
    ("bd-zou2022-vr-r8-vs-r7.json", "zou2022-small-vr", "zou2022-small-vr: round 8 vs round 7"),
    ("bd-gabic-vr-r9-vs-r8.json", "gabic-small-vr", "gabic-small-vr: round 9 vs round 8"),
    ("bd-zou2022-vr-r9-vs-r8.json", "zou2022-small-vr", "zou2022-small-vr: round 9 vs round 8"),
    ("bd-gabic-vr-r10-vs-r9.json", "gabic-small-vr", "gabic-small-vr: round 10 vs round 9"),
    ("bd-zou2022-vr-r10-vs-r9.json", "zou2022-small-vr", "zou2022-small-vr: round 10 vs round 9"),
    ("bd-gabic-vr-r11-vs-r10.json", "gabic-small-vr", "gabic-small-vr: round 11 vs round 10"),
    ("bd-zou2022-vr-r11-vs-r10.json", "zou2022-small-vr", "zou2022-small-vr: round 11 vs round 10"),
    ("bd-gabic-vr-r12-vs-r11.json", "gabic-small-vr", "gabic-small-vr: round 12 vs round 11"),
    ("bd-zou2022-vr-r12-vs-r11.json", "zou2022-small-vr", "zou2022-small-vr: round 12 vs round 11"),
    ("bd-gabic-vr-compact-vs-reference.json", "gabic-small-vr", "gabic-small-vr: compact vs reference layout"),
    ("bd-zou2022-vr-compact-vs-reference.json", "zou2022-small-vr", "zou2022-small-vr: compact vs reference layout"),
)


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f} %"


def rd_table() -> list[str]:
    lines = ["| model | q1 bpp / PSNR | q2 | q3 | q4 | decoded exactly |", "|---|---|---|---|---|---|"]
    for label, name in CURVES:
        data = _load(name)
        if data is None:
            continue
        results, points = data["results"], data["details"]["points"]
        cells = [f"{b:.3f} / {p:.2f} dB" for b, p in zip(results["bpp"], results["psnr-rgb"], strict=True)]
        checks = [p.get("decode_matches_forward") for p in points]
        exact = "not checked" if None in checks else ("yes" if all(checks) else "NO")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {exact} |")
    return lines


def bd_table() -> list[str]:
    lines = ["| comparison | BD-rate (PSNR) | BD-PSNR | BD-rate (MS-SSIM) |", "|---|---|---|---|"]
    for file, test, label in COMPARISONS:
        data = _load(file)
        if data is None:
            continue
        for row in data["comparisons"]:
            if row["name"] == test:
                bd_psnr = row.get("bd_psnr")
                lines.append(f"| {label} | {_percent(row.get('bd_rate_psnr'))} | "
                             f"{'n/a' if bd_psnr is None else f'{bd_psnr:+.2f} dB'} | "
                             f"{_percent(row.get('bd_rate_ms_ssim'))} |")  # fmt: skip
    for anchor in ("jpeg", "webp"):
        data = _load(f"bd-vs-{anchor}.json")
        if data is None:
            continue
        for row in data["comparisons"]:
            bd_psnr = row.get("bd_psnr")
            lines.append(f"| {Path(row['file']).stem} vs {anchor.upper() if anchor == 'jpeg' else 'WebP'} | "
                         f"{_percent(row.get('bd_rate_psnr'))} | "
                         f"{'n/a' if bd_psnr is None else f'{bd_psnr:+.2f} dB'} | "
                         f"{_percent(row.get('bd_rate_ms_ssim'))} |")  # fmt: skip
    return lines


def main() -> None:
    global RESULTS
    if len(sys.argv) > 1:
        RESULTS = Path(sys.argv[1]).resolve()
    first = next((data for _, name in CURVES if (data := _load(name)) is not None), {})
    images = (first.get("details") or {}).get("images")
    print(f"BSDS500 val ({RESULTS.name}), the first {images} photos, real bitstreams:\n")
    print("\n".join(rd_table()))
    print()
    print("\n".join(bd_table()))


if __name__ == "__main__":
    main()
