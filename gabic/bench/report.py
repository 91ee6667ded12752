"""Reading a benchmark report: the table printed after a run, the GABIC / Zou2022 ratios, and
two reports side by side (``--compare``). Works on the reports in ``results/bench/`` too."""

from __future__ import annotations

from typing import Any


def _fmt_ms(timing: dict[str, Any] | None) -> str:
    return "-" if not timing else f"{timing['median_ms']:.1f}"


def _cpu_ms(timing: dict[str, Any]) -> float:
    return timing.get("cpu_median_ms", timing["median_ms"])


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as a table: models, blocks, graph core, app and training step (wall medians, ms)."""
    lines = []
    rows = report.get("models", [])
    if rows:
        lines.append(f"\n{'model':<9}{'config':<7}{'dev':<5}{'params':>9}{'MB':>7}{'GFLOPs':>9}"
                     f"{'fwd ms':>9}{'enc ms':>9}{'dec ms':>9}{'peak fwd MB':>12}")  # fmt: skip
        for r in rows:
            peak = r.get("peak_memory", {}).get("forward_mb")
            lines.append(f"{r['arch']:<9}{r['config']:<7}{r['device']:<5}"
                         f"{r.get('parameters', 0) / 1e6:>8.2f}M{r.get('parameter_mb', 0):>7.1f}"
                         f"{r.get('gflops', float('nan')):>9.1f}{_fmt_ms(r.get('forward')):>9}"
                         f"{_fmt_ms(r.get('encode')):>9}{_fmt_ms(r.get('decode')):>9}"
                         f"{'-' if peak is None else f'{peak:.0f}':>12}")  # fmt: skip
    for r in report.get("blocks", []):
        lines.append(f"block {r['config']:<6}{r['block']:<13}{r['part']:<13} GABIC {_fmt_ms(r['gabic']):>8} ms"
                     f"  Zou2022 {_fmt_ms(r['zou2022']):>8} ms  ratio {r['ratio']:.2f}")  # fmt: skip
    for r in report.get("core", []):
        lines.append(f"core  {r['config']:<6}{r['scale']:<5} b{r['batch']:<3}{r['pass']:<17} dense "
                     f"{_fmt_ms(r['dense']):>8}  pyg {_fmt_ms(r['pyg']):>8}  window-attn "
                     f"{_fmt_ms(r['window_attention']):>8} ms  pyg/dense {r['pyg_over_dense']:.2f}"
                     f"  max|diff| {r['max_abs_diff_dense_vs_pyg']:.1e}")  # fmt: skip
    app = report.get("app")
    if app:
        lines.append(f"app   analyze both models ({app['size'][0]}x{app['size'][1]}, {app.get('photo')}, "
                     f"{app.get('weights')}): {_fmt_ms(app['analyze_both'])} ms")  # fmt: skip
    for r in report.get("train", []):
        lines.append(f"train {r['arch']:<8}{r['device']:<5}{' bf16' if r.get('bf16_transforms') else ''} step "
                     f"{_fmt_ms(r['step'])} ms  ({r['images_per_s']:.1f} img/s)")  # fmt: skip
    data = report.get("data")
    if data:
        for r in data["rows"]:
            lines.append(f"data  {r['workers']} workers, batch {data['batch']}x{data['patch']}^2 against a "
                         f"{data['step_ms']:.0f} ms step: {r['images_per_s']:.1f} img/s, "
                         f"waiting for data {100 * r['data_wait_share']:.0f} %")  # fmt: skip
    search = report.get("search")
    if search:
        for r in search["rows"]:
            lines.append(f"search {r['model']:<18}{search['size'][0]}x{search['size'][1]} q{search['quality']:g} "
                         f"effort {r['effort']:>3}: encode {_fmt_ms(r['encode'])} ms, {r['bpp']:.4f} bpp, "
                         f"{r['psnr']:.2f} dB")  # fmt: skip
    return lines


def print_report(report: dict[str, Any]) -> None:
    """Print :func:`report_lines` and the report's summary."""
    for line in [*report_lines(report), *report.get("summary", [])]:
        print(line)


def summarise(report: dict[str, Any]) -> list[str]:
    """GABIC / Zou2022 ratios of the wall medians (forward, encode, decode, FLOPs, training step)
    and the graph core's PyG / dense ratio, as readable lines."""
    lines = []
    by_key = {(r["arch"], r["config"], r["device"]): r for r in report.get("models", [])}
    for (arch, config, device), row in by_key.items():
        other = by_key.get(("zou2022", config, device))
        if arch != "gabic" or other is None:
            continue
        for key in ("forward", "encode", "decode"):
            if key in row and key in other:
                ratio = row[key]["median_ms"] / other[key]["median_ms"]
                lines.append(f"{config} {device} {key}: GABIC / Zou2022 = {ratio:.3f}")
        if "gflops" in row and "gflops" in other:
            lines.append(f"{config} {device} FLOPs: GABIC / Zou2022 = {row['gflops'] / other['gflops']:.4f}")
    for row in report.get("core", []):
        if row["pass"] == "forward" and row["batch"] == 1 and row["scale"] == "1/4":
            lines.append(
                f"{row['config']} {row['device']} graph core 1/4: PyG / dense = {row['pyg_over_dense']:.2f}"
            )
    train = {r["arch"]: r for r in report.get("train", [])}
    if {"gabic", "zou2022"} <= set(train):
        ratio = train["gabic"]["step"]["median_ms"] / train["zou2022"]["step"]["median_ms"]
        shape = "x".join(str(v) for v in train["gabic"]["batch"])
        lines.append(f"training step ({shape}): GABIC / Zou2022 = {ratio:.3f}")
    return lines


def compare_reports(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """CPU-time medians of two reports of the same parts, side by side."""
    lines = []
    for rb, ra in zip(before.get("models", []), after.get("models", []), strict=False):
        if "forward" in rb and "forward" in ra:
            lines.append(f"forward {rb['arch']:8}{rb['config']:7} CPU ms before {_cpu_ms(rb['forward']):9.0f}"
                         f"  after {_cpu_ms(ra['forward']):9.0f}")  # fmt: skip
    for rb, ra in zip(before.get("blocks", []), after.get("blocks", []), strict=False):
        ratio_b = _cpu_ms(rb["gabic"]) / _cpu_ms(rb["zou2022"])
        ratio_a = _cpu_ms(ra["gabic"]) / _cpu_ms(ra["zou2022"])
        lines.append(f"block {rb['config']:7}{rb['block']:14}{rb['part']:13} GABIC/Zou2022 CPU before "
                     f"{ratio_b:.2f}  after {ratio_a:.2f}")  # fmt: skip
    for rb, ra in zip(before.get("core", []), after.get("core", []), strict=False):
        lines.append(f"core {rb['config']:7}{rb['scale']:5} b{rb['batch']:<3}{rb['pass']:17} dense CPU ms before "
                     f"{_cpu_ms(rb['dense']):8.1f} after {_cpu_ms(ra['dense']):8.1f}; PyG/dense after "
                     f"{_cpu_ms(ra['pyg']) / _cpu_ms(ra['dense']):.2f}; dense/window-attention after "
                     f"{_cpu_ms(ra['dense']) / _cpu_ms(ra['window_attention']):.2f}")  # fmt: skip
    for name, report in (("before", before), ("after", after)):
        steps = {r["arch"]: _cpu_ms(r["step"]) for r in report.get("train", [])}
        if {"gabic", "zou2022"} <= set(steps):
            lines.append(f"training step {name}: GABIC {steps['gabic']:.0f} ms, Zou2022 {steps['zou2022']:.0f} ms "
                         f"(CPU), ratio {steps['gabic'] / steps['zou2022']:.3f}")  # fmt: skip
    return lines
