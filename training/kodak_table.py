"""Print the README's Kodak tables (Markdown) from the files in results/kodak/.

python training/kodak_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "results" / "kodak"
#: The one-rate models, then the variable-rate ones (left out while their results file is missing).
MODELS = tuple(
    name
    for name in ("gabic-small", "zou2022-small", "gabic-small-vr", "zou2022-small-vr")
    if (RESULTS / f"{name}.json").is_file()
)


def _load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def _number(value: float | None, spec: str, unit: str = "") -> str:
    return "n/a (curve not monotonic)" if value is None else f"{value:{spec}}{unit}"


def rd_table() -> list[str]:
    lines = ["| model | q1 bpp / PSNR / MS-SSIM | q2 | q3 | q4 |", "|---|---|---|---|---|"]
    for model in MODELS:
        results = _load(f"{model}.json")["results"]
        cells = [f"{b:.3f} / {p:.2f} dB / {m:.4f}"
                 for b, p, m in zip(results["bpp"], results["psnr-rgb"], results["ms-ssim-rgb"], strict=True)]  # fmt: skip
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def bd_table() -> list[str]:
    lines = [
        "| test | anchor | BD-rate (PSNR) | BD-PSNR | BD-rate (MS-SSIM) | file |",
        "|---|---|---|---|---|---|",
    ]
    files = ["bd-gabic-vs-zou2022.json", "bd-vs-jpeg.json", "bd-vs-webp.json", "bd-vs-avif.json",
             "bd-gabic-vs-zou2022-vr.json", "bd-gabic-vr-vs-one-rate.json", "bd-zou2022-vr-vs-one-rate.json",
             "bd-vr-vs-jpeg.json", "bd-vr-vs-webp.json", "bd-vr-vs-avif.json"]  # fmt: skip
    for file in files:
        if not (RESULTS / file).is_file():
            continue
        report = _load(file)
        for row in report["comparisons"]:
            if row["name"] not in MODELS:
                continue
            lines.append(
                f"| {row['name']} | {report['anchor']['name']} | {_number(row['bd_rate_psnr'], '+.1f', ' %')} | "
                f"{_number(row['bd_psnr'], '+.2f', ' dB')} | {_number(row['bd_rate_ms_ssim'], '+.1f', ' %')} | "
                f"`results/kodak/{file}` |"
            )
    return lines


def jpeg_gap_table() -> list[str]:
    """PSNR of each point minus JPEG's at the same rate (JPEG's curve interpolated linearly in log bpp)."""
    jpeg = _load("jpeg.json")["results"]
    order = np.argsort(jpeg["bpp"])
    log_bpp = np.log(np.asarray(jpeg["bpp"])[order])
    psnr = np.asarray(jpeg["psnr-rgb"])[order]
    lines = ["| model | q1 PSNR − JPEG | q2 | q3 | q4 |", "|---|---|---|---|---|"]
    for model in MODELS:
        results = _load(f"{model}.json")["results"]
        cells = []
        for bpp, model_psnr in zip(results["bpp"], results["psnr-rgb"], strict=True):
            if log_bpp[0] <= np.log(bpp) <= log_bpp[-1]:
                cells.append(f"{model_psnr - np.interp(np.log(bpp), log_bpp, psnr):+.2f} dB")
            else:
                cells.append("n/a (outside JPEG's rates)")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    print("\n".join(rd_table()))
    print()
    print("\n".join(bd_table()))
    print()
    print("\n".join(jpeg_gap_table()))
