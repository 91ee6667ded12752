"""`gabic.bench`: the library call returns the report, the command prints and writes it, the
measuring helpers measure, and nothing outside the repository is read."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY_CONFIG

from gabic import bench, zoo
from gabic.__main__ import main
from gabic.bench.inputs import load_photo, make_model
from gabic.bench.model_level import count_flops
from gabic.bench.timing import time_call, time_pair

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results" / "bench"


@pytest.fixture()
def tiny_config(tmp_path) -> str:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_CONFIG.to_dict()))
    return str(path)


def test_run_returns_the_report(tiny_config, capsys):
    report = bench.run(parts=["model", "flops", "forward", "codec", "blocks", "core", "train"], configs=[tiny_config],
                       size=(64, 64), devices=["cpu"], quick=True, note="smoke test", verbose=False)  # fmt: skip
    assert capsys.readouterr().out == ""  # verbose=False prints nothing
    assert report["size"] == [64, 64] and report["note"] == "smoke test"
    assert (report["repeats"], report["warmup"]) == (1, 0)  # quick mode
    assert report["parts"] == sorted(["model", "flops", "forward", "codec", "blocks", "core", "train"])
    assert {"cpu", "torch", "torch_threads", "load_average", "devices"} <= set(report["machine"])
    models = {(r["arch"], r["config"]): r for r in report["models"]}
    assert set(models) == {("gabic", tiny_config), ("zou2022", tiny_config)}
    for row in models.values():
        assert row["parameters"] > 0 and row["gflops"] > 0 and row["bytes"] > 0
        for key in ("forward", "encode", "decode"):
            assert row[key]["median_ms"] > 0 and len(row[key]["runs_ms"]) == 1
    # same widths: the two models differ only in their window blocks
    gabic, zou = models["gabic", tiny_config], models["zou2022", tiny_config]
    assert gabic["parameters"] == pytest.approx(zou["parameters"], rel=0.01)
    assert len(report["blocks"]) == 8  # four attention modules, each as module and window block
    assert all(r["max_abs_diff_dense_vs_pyg"] <= 1e-5 for r in report["core"])
    assert {r["pass"] for r in report["core"]} == {"forward", "forward+backward"}
    assert [(r["arch"], r["batch"]) for r in report["train"]] == [("gabic", [2, 3, 64, 64]),
                                                                    ("zou2022", [2, 3, 64, 64])]  # fmt: skip
    assert any("training step (2x3x64x64): GABIC / Zou2022" in line for line in report["summary"])
    json.dumps(report)  # JSON-able as it is


def test_command_prints_the_table_and_writes_the_json(tiny_config, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--quick", "--configs", tiny_config, "--size", "64x64", "--devices", "cpu",
                 "--only", "model,flops", "--output", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert [r["arch"] for r in report["models"]] == ["gabic", "zou2022"]
    assert "FLOPs: GABIC / Zou2022" in printed and "GFLOPs" in printed and f"wrote {out}" in printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--only", "everything"], "unknown parts"), (["--size", "big"], "WIDTHxHEIGHT"),
     (["--photo", "no/such/photo.png", "--only", "app"], "is not a file"),
     (["--configs", "nonsense"], "unknown config")],
)  # fmt: skip
def test_bad_arguments_are_one_line_errors(argv, message, capsys):
    assert main(["bench", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_time_call_and_time_pair_measure_what_they_time():
    calls = []
    slow, fast = time_pair(lambda: (calls.append("a"), time.sleep(0.02)), lambda: calls.append("b"),
                           repeats=3, warmup=1)  # fmt: skip
    assert calls == ["a", "b"] * 4  # interleaved, warm-up included
    assert len(slow["runs_ms"]) == 3 and min(slow["runs_ms"]) >= 20 > max(fast["runs_ms"])
    assert slow["cpu_median_ms"] < 10  # sleeping takes wall time, not CPU time
    single = time_call(lambda: time.sleep(0.01), repeats=2, warmup=0)
    assert single["min_ms"] >= 10 and single["min_ms"] <= single["median_ms"]


def test_flops_of_both_models_are_close():
    """GABIC's dense path is Zou2022's window attention with a mask, plus the kNN's distances:
    a little more, never less (the fused CPU attention counts as its two matmuls)."""
    x = torch.rand(1, 3, 64, 64)
    flops = {
        arch: count_flops(make_model(arch, TINY_CONFIG, "cpu"), x)["gflops"] for arch in ("gabic", "zou2022")
    }
    assert 0 < flops["zou2022"] < flops["gabic"] <= flops["zou2022"] * 1.05


def test_fused_cpu_attention_counts_as_its_two_matmuls():
    from torch.nn.functional import scaled_dot_product_attention

    q, k, v = (torch.rand(6, 2, 16, 8) for _ in range(3))
    mask = torch.zeros(6, 2, 16, 16)

    class Fused(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return scaled_dot_product_attention(q, k, v, attn_mask=mask)

    class Spelled(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(q @ k.transpose(-2, -1) / 8**0.5 + mask, dim=-1) @ v

    fused, spelled = (count_flops(m, torch.zeros(1))["gflops"] for m in (Fused(), Spelled()))
    assert fused == spelled == 2 * 2 * 6 * 2 * 16 * 16 * 8 / 1e9


@pytest.mark.slow  # a child process that imports PyTorch: several seconds
def test_peak_rss_reset_reads_proc():
    # in a fresh process: this one may hold gigabytes of freed-but-mapped memory that a new block reuses
    probe = (
        "from gabic.bench.memory import read_status_kb, reset_peak_rss\n"
        "try:\n    base = reset_peak_rss()\nexcept OSError:\n    print('skip'); raise SystemExit\n"
        "block = bytearray(64 * 2**20)\nblock[::4096] = b'x' * len(block[::4096])\n"
        "print(read_status_kb('VmHWM') - base)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    if done.stdout.strip() == "skip":
        pytest.skip("/proc/self/clear_refs is not writable here")
    assert int(done.stdout.strip().splitlines()[-1]) > 50 * 1024


def test_default_photo_needs_no_file_and_fits_the_size():
    photo, description = load_photo(None, 96, 64)
    assert photo.size == (96, 64) and photo.mode == "RGB"
    assert description.startswith(("scikit-image", "generated image"))
    again, _ = load_photo(None, 96, 64)
    assert again.tobytes() == photo.tobytes()


def test_app_part_reads_nothing_outside_the_repository_and_python(monkeypatch):
    """Every file the app part opens (weights, photo, libraries) is in the repository, the Python
    installation, /proc or the temporary folder: no ../shared or other sibling folder."""
    import sysconfig
    import tempfile

    allowed = [ROOT, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path("/proc"), Path("/sys"),
               Path("/dev"), Path(tempfile.gettempdir()).resolve(),
               *(Path(p).resolve() for p in sysconfig.get_paths().values())]  # fmt: skip
    opened: list[Path] = []
    recording = [True]

    def hook(event: str, args: tuple) -> None:
        if recording[0] and event == "open" and isinstance(args[0], (str, Path)):
            opened.append(Path(args[0]).resolve())

    monkeypatch.delenv("GABIC_WEIGHTS_DIR", raising=False)
    sys.addaudithook(hook)  # audit hooks cannot be removed: `recording` switches it off after the call
    try:
        report = bench.run(parts=["app"], size=(64, 64), devices=["cpu"], quick=True, verbose=False)
    finally:
        recording[0] = False
    assert report["app"]["size"] == [64, 64] and report["app"]["analyze_both"]["median_ms"] > 0
    assert report["app"]["decode"] is False and report["app"]["analyze_gabic-small_decoded"]["median_ms"] > 0
    assert opened, "the audit hook saw no file opened"
    outside = [p for p in opened if not any(p.is_relative_to(folder) for folder in allowed)]
    assert outside == []


def test_a_photo_file_is_used_as_given(tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.new("RGB", (80, 48), (10, 120, 200)).save(path)
    photo, description = load_photo(str(path), 768, 512)
    assert photo.size == (80, 48) and description == "photo.png"


def test_committed_reports_still_print_and_compare(capsys):
    # browser-*.json, app-speed-*.json and upload-probe-*.json are the app's benchmarks and probe (the
    # former bench_browser.py, tests/e2e/bench_app.py and tests/e2e/probe_upload.py), other formats
    app_files = ("browser-", "app-speed-", "upload-probe-")
    files = sorted(p for p in RESULTS.glob("*.json") if not p.name.startswith(app_files))
    assert files, "no committed benchmark reports"
    for path in files:
        report = json.loads(path.read_text())
        lines = bench.report_lines(report)
        assert lines, path.name
        if "app" in report:
            assert any(report["app"]["photo"] in line for line in lines)
        assert bench.summarise(report) == report["summary"], path.name
    before, after = (
        json.loads((RESULTS / f"cpu-graph-dense-{name}.json").read_text()) for name in ("before", "after")
    )
    compared = bench.compare_reports(before, after)
    assert any(line.startswith("forward gabic") for line in compared)
    assert any(line.startswith("training step after") for line in compared)


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


@pytest.mark.slow
def test_training_step_with_bf16_transforms(tiny_config):
    report = bench.run(parts=["train"], configs=[tiny_config], devices=["cpu"], train_bf16=True, quick=True,
                       verbose=False)  # fmt: skip
    rows = report["train"]
    assert [(r["arch"], r["bf16_transforms"]) for r in rows] == [("gabic", True), ("zou2022", True)]
    assert all(r["step"]["median_ms"] > 0 and r["images_per_s"] > 0 for r in rows)
    assert any("bf16 step" in line for line in bench.report_lines(report))


@pytest.mark.slow
def test_data_part_reports_throughput_and_wait_share():
    report = bench.run(parts=["data"], configs=["small"], devices=["cpu"], verbose=False)
    rows = report["data"]["rows"]
    assert [r["workers"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert 0 < row["data_wait_share"] < 1
        assert 0 < row["images_per_s"] <= row["images_per_s_limit"]
    assert any(line.startswith("data  2 workers") for line in bench.report_lines(report))


def test_search_part_times_both_efforts_of_both_variable_rate_models(capsys):
    report = bench.run(parts=["search"], size=(64, 48), devices=["cpu"], quick=True, verbose=False)
    search = report["search"]
    assert search["size"] == [64, 48] and search["quality"] == 2.0
    assert [(r["model"], r["effort"]) for r in search["rows"]] == [
        (name, effort) for name in sorted(zoo.VARIABLE_RATE_FAMILIES.values()) for effort in (0, 30)
    ]
    for row in search["rows"]:
        assert row["encode"]["median_ms"] > 0 and row["bytes"] > 0 and row["psnr"] > 10
    assert sum(line.startswith("search ") for line in bench.report_lines(report)) == 4
