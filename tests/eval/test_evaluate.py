"""`python -m gabic eval` and `python -m gabic bdrate` on tiny random-weight models and generated images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import random_image

from gabic.__main__ import main


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    random_image(64, 128, seed=1).save(folder / "a.png")
    random_image(96, 64, seed=2).save(folder / "b.png")
    random_image(72, 72, seed=3).save(folder / "c.png")
    return folder


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_eval_shipped_model_writes_compressai_json(use_random_weights, image_folder, tmp_path, capsys):
    out = tmp_path / "gabic.json"
    code = main(["eval", str(image_folder), "--model", "gabic-small", "--quality", "1", "3",
                 "--max-images", "2", "--output", str(out), "--no-progress", "--device", "cpu"])  # fmt: skip
    assert code == 0
    data = _read(out)
    assert data["name"] == "gabic-small"
    results = data["results"]
    for key in ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time", "bpp-estimated"):
        assert len(results[key]) == 2, key
    points = data["details"]["points"]
    assert [p["quality"] for p in points] == [1, 3]
    assert data["details"]["images"] == 2
    for point in points:
        assert point["decode_matches_forward"] is True
        assert [p["image"] for p in point["per_image"]] == ["a.png", "b.png"]
        for image in point["per_image"]:
            assert image["bpp"] == pytest.approx(image["bytes"] * 8 / (image["width"] * image["height"]))
            assert image["bpp_estimated"] > 0 and math.isfinite(image["psnr"])
            assert image["ms_ssim"] is None  # images below 161 px: MS-SSIM undefined, written as null
        assert point["bpp"] == pytest.approx(sum(i["bpp"] for i in point["per_image"]) / 2)
    assert "exact" in capsys.readouterr().out


def test_eval_safetensors_file(use_random_weights, image_folder, tmp_path):
    out = tmp_path / "file.json"
    weights = use_random_weights / "zou2022-small-q2.safetensors"
    code = main(["eval", str(image_folder), "--model", str(weights), "--max-images", "1",
                 "--output", str(out), "--no-progress", "--no-check", "--device", "cpu"])  # fmt: skip
    assert code == 0
    point = _read(out)["details"]["points"][0]
    assert point["arch"] == "zou2022" and "decode_matches_forward" not in point


def test_eval_with_encoder_search(use_random_weights, image_folder, tmp_path):
    """``--effort``: the point records it, and the check compares every decoded image with the
    encoder's own (whether the search pays is tests/codec/test_search.py's question)."""
    points = {}
    for effort in (0, 3):
        out = tmp_path / f"effort{effort}.json"
        assert main(["eval", str(image_folder), "--model", "gabic-small", "--quality", "2", "--max-images", "2",
                     "--effort", str(effort), "--output", str(out), "--no-progress", "--device", "cpu"]) == 0  # fmt: skip
        points[effort] = _read(out)["details"]["points"][0]
    assert points[3]["effort"] == 3 and points[3]["decode_matches_forward"] is True
    assert points[0]["effort"] == 0


def test_eval_classic_codec(image_folder, tmp_path):
    out = tmp_path / "jpeg.json"
    assert main(["eval", str(image_folder), "--codec", "jpeg", "--qualities", "20", "80",
                 "--output", str(out), "--no-progress"]) == 0  # fmt: skip
    data = _read(out)
    assert data["name"] == "JPEG"
    assert data["results"]["bpp"] == sorted(data["results"]["bpp"])
    assert [p["quality"] for p in data["details"]["points"]] == [20, 80]
    assert data["details"]["images"] == 3


def test_eval_errors_are_one_line(tmp_path, capsys):
    assert main(["eval", str(tmp_path), "--codec", "webp"]) == 1
    assert "no images" in capsys.readouterr().err


def _write_curve(path: Path, name: str, bpp: list[float], psnr: list[float]) -> Path:
    path.write_text(json.dumps({"name": name, "description": "", "results": {
        "bpp": bpp, "psnr-rgb": psnr, "ms-ssim-rgb": [0.9 + 0.01 * i for i in range(len(bpp))]}}))  # fmt: skip
    return path


def test_bdrate_of_a_curve_against_itself_and_a_better_one(tmp_path, capsys):
    bpp = [0.2, 0.4, 0.7, 1.1]
    psnr = [28.0, 31.0, 34.0, 36.5]
    anchor = _write_curve(tmp_path / "a.json", "anchor", bpp, psnr)
    same = _write_curve(tmp_path / "b.json", "same", bpp, psnr)
    better = _write_curve(tmp_path / "c.json", "better", [b * 0.9 for b in bpp], psnr)
    out = tmp_path / "bd.json"
    assert main(["bdrate", str(anchor), str(same), str(better), "--output", str(out)]) == 0
    rows = {row["name"]: row for row in _read(out)["comparisons"]}
    assert rows["same"]["bd_rate_psnr"] == pytest.approx(0.0, abs=1e-6)
    assert rows["better"]["bd_rate_psnr"] == pytest.approx(-10.0, abs=0.5)
    assert rows["better"]["bd_psnr"] > 0
    assert "better" in capsys.readouterr().out


@pytest.mark.slow  # the PNG is drawn by kaleido in Chromium when both are installed: seconds
def test_bdrate_plot_is_written(tmp_path):
    anchor = _write_curve(tmp_path / "a.json", "anchor", [0.2, 0.4, 0.7, 1.1], [28.0, 31.0, 34.0, 36.5])
    better = _write_curve(tmp_path / "c.json", "better", [0.18, 0.36, 0.63, 0.99], [28.0, 31.0, 34.0, 36.5])
    assert main(["bdrate", str(anchor), str(better), "--output", str(tmp_path / "bd.json"),
                 "--plot", str(tmp_path / "rd")]) == 0  # fmt: skip
    page = (tmp_path / "rd.html").read_text()
    assert "better" in page and "anchor" in page


def test_eval_on_kodak_with_jpeg(kodak_dir, tmp_path):
    out = tmp_path / "k.json"
    assert main(["eval", str(kodak_dir), "--codec", "jpeg", "--qualities", "50", "--max-images", "1",
                 "--output", str(out), "--no-progress"]) == 0  # fmt: skip
    point = _read(out)["details"]["points"][0]
    assert 0.5 < point["bpp"] < 3 and 25 < point["psnr"] < 40 and 0.9 < point["ms_ssim"] < 1
