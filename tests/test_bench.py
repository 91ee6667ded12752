"""`python -m gabic bench`: a quick smoke run and the measuring helpers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers import TINY_CONFIG

from gabic.__main__ import main
from gabic.bench import runner as bench


def test_quick_bench_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG.to_dict()))
    code = main(["bench", "--quick", "--configs", str(config), "--size", "64x64", "--devices", "cpu",
                 "--only", "model,flops,forward,codec,blocks,core,train", "--note", "smoke test",
                 "--output", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["size"] == [64, 64] and report["note"] == "smoke test"
    machine = report["machine"]
    assert {"cpu", "torch", "torch_threads", "load_average", "devices"} <= set(machine)
    models = {(r["arch"], r["config"]): r for r in report["models"]}
    assert set(models) == {("gabic", str(config)), ("zou2022", str(config))}
    for row in models.values():
        assert row["parameters"] > 0 and row["gflops"] > 0 and row["bytes"] > 0
        for key in ("forward", "encode", "decode"):
            assert row[key]["median_ms"] > 0 and "cpu_median_ms" in row[key]
    # same widths: the two models differ only in their window blocks
    gabic, zou = models["gabic", str(config)], models["zou2022", str(config)]
    assert gabic["parameters"] == pytest.approx(zou["parameters"], rel=0.01)
    assert len(report["blocks"]) == 8
    assert all(r["max_abs_diff_dense_vs_pyg"] <= 1e-5 for r in report["core"])
    assert {r["pass"] for r in report["core"]} == {"forward", "forward+backward"}
    assert [r["arch"] for r in report["train"]] == ["gabic", "zou2022"]
    assert any("GABIC / Zou2022" in line for line in report["summary"])
    assert "training step" in capsys.readouterr().out


def test_unknown_part_is_a_one_line_error(capsys):
    assert main(["bench", "--only", "everything"]) == 1
    assert "unknown parts" in capsys.readouterr().err


def test_time_pair_interleaves_and_reports_medians():
    calls = []
    a, b = bench.time_pair(lambda: calls.append("a"), lambda: calls.append("b"), repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert len(a["runs_ms"]) == 3 and a["median_ms"] >= 0 and b["cpu_median_ms"] >= 0


def test_flops_of_both_models_are_close():
    x = torch.rand(1, 3, 64, 64)
    flops = {arch: bench.count_flops(bench.make_model(arch, TINY_CONFIG, "cpu"), x)["gflops"]
             for arch in ("gabic", "zou2022")}  # fmt: skip
    assert 0 < flops["gabic"] <= flops["zou2022"] * 1.02


def test_peak_rss_reset_reads_proc():
    pytest.importorskip("resource")
    # in a fresh process: this one may hold gigabytes of freed-but-mapped memory that a new block reuses
    probe = (
        "from gabic.bench import runner as bench\n"
        "try:\n    base = bench.reset_peak_rss()\nexcept OSError:\n    print('skip'); raise SystemExit\n"
        "block = bytearray(64 * 2**20)\nblock[::4096] = b'x' * len(block[::4096])\n"
        "print(bench.read_status_kb('VmHWM') - base)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    if done.stdout.strip() == "skip":
        pytest.skip("/proc/self/clear_refs is not writable here")
    assert int(done.stdout.strip().splitlines()[-1]) > 50 * 1024


def test_compare_prints_cpu_time_ratios(tmp_path, capsys):
    def report(dense: float) -> dict:
        timing = {"median_ms": 1.0, "cpu_median_ms": dense}
        window = {"median_ms": 1.0, "cpu_median_ms": 10.0}
        return {"core": [{"config": "small", "scale": "1/4", "batch": 1, "pass": "forward", "dense": timing,
                          "pyg": {"median_ms": 1.0, "cpu_median_ms": 40.0}, "window_attention": window}],
                "train": [{"arch": "gabic", "step": timing}, {"arch": "zou2022", "step": window}]}  # fmt: skip

    before, after = tmp_path / "before.json", tmp_path / "after.json"
    before.write_text(json.dumps(report(20.0)))
    after.write_text(json.dumps(report(10.0)))
    assert main(["bench", "--compare", str(before), str(after)]) == 0
    out = capsys.readouterr().out
    assert "before     20.0 after     10.0" in out and "PyG/dense after 4.00" in out
    assert "ratio 2.000" in out and "ratio 1.000" in out


def test_bench_training_step_with_bf16_transforms(tmp_path, capsys):
    out = tmp_path / "bench.json"
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG.to_dict()))
    code = main(["bench", "--quick", "--configs", str(config), "--devices", "cpu", "--only", "train",
                 "--train-bf16", "--output", str(out)])  # fmt: skip
    assert code == 0
    rows = json.loads(out.read_text())["train"]
    assert [(r["arch"], r["bf16_transforms"]) for r in rows] == [("gabic", True), ("zou2022", True)]
    assert all(r["step"]["median_ms"] > 0 for r in rows)
    assert "bf16 step" in capsys.readouterr().out
