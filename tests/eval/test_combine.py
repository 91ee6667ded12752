"""`python -m gabic eval --skip-images` and `python -m gabic combine`: an evaluation in parts
joins into the evaluation of the whole folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import random_image

from gabic.__main__ import main


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for index, (height, width) in enumerate([(64, 128), (96, 64), (72, 72), (64, 80)]):
        random_image(height, width, seed=index + 1).save(folder / f"{'abcd'[index]}.png")
    return folder


def _eval(folder: Path, out: Path, *extra: str) -> dict:
    args = ["eval", str(folder), "--model", "gabic-small", "--quality", "1", "--output", str(out),
            "--no-progress", "--device", "cpu", *extra]  # fmt: skip
    assert main(args) == 0
    return json.loads(out.read_text())


def test_parts_join_into_the_whole(use_random_weights, image_folder, tmp_path, capsys):
    whole = _eval(image_folder, tmp_path / "whole.json")
    first = _eval(image_folder, tmp_path / "first.json", "--max-images", "1")
    rest = _eval(image_folder, tmp_path / "rest.json", "--skip-images", "1")
    assert [e["image"] for e in first["details"]["points"][0]["per_image"]] == ["a.png"]
    assert [e["image"] for e in rest["details"]["points"][0]["per_image"]] == ["b.png", "c.png", "d.png"]
    middle = _eval(image_folder, tmp_path / "middle.json", "--skip-images", "1", "--max-images", "2")
    assert [e["image"] for e in middle["details"]["points"][0]["per_image"]] == ["b.png", "c.png"]

    out = tmp_path / "joined.json"
    # the parts in any order
    assert (
        main(["combine", str(tmp_path / "rest.json"), str(tmp_path / "first.json"), "--output", str(out)])
        == 0
    )
    assert "2 parts, 4 images" in capsys.readouterr().out
    joined = json.loads(out.read_text())
    assert joined["details"]["images"] == 4
    for key in ("bpp", "psnr-rgb", "bpp-estimated"):
        assert joined["results"][key] == pytest.approx(whole["results"][key]), key
    for point, reference in zip(joined["details"]["points"], whole["details"]["points"], strict=True):
        assert [e["image"] for e in point["per_image"]] == ["a.png", "b.png", "c.png", "d.png"]
        assert [e["bytes"] for e in point["per_image"]] == [e["bytes"] for e in reference["per_image"]]
        assert point["quality"] == reference["quality"] and point["decode_matches_forward"] is True
    # the times of the parts add up
    assert joined["details"]["elapsed_s"] == pytest.approx(
        first["details"]["elapsed_s"] + rest["details"]["elapsed_s"]
    )


def test_parts_that_do_not_fit_are_refused(use_random_weights, image_folder, tmp_path, capsys):
    _eval(image_folder, tmp_path / "first.json", "--max-images", "2")
    _eval(image_folder, tmp_path / "overlap.json", "--skip-images", "1")
    other = tmp_path / "other.json"
    assert main(["eval", str(image_folder), "--model", "gabic-small", "--quality", "3", "--skip-images", "2",
                 "--output", str(other), "--no-progress", "--device", "cpu"]) == 0  # fmt: skip
    capsys.readouterr()
    cases = {
        "overlap.json": "more than one part",
        "other.json": "differ",
    }
    for name, message in cases.items():
        code = main(
            [
                "combine",
                str(tmp_path / "first.json"),
                str(tmp_path / name),
                "--output",
                str(tmp_path / "x.json"),
            ]
        )
        assert code == 1
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and "Traceback" not in err
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert (
        main(["combine", str(tmp_path / "first.json"), str(garbage), "--output", str(tmp_path / "x.json")])
        == 1
    )
    err = capsys.readouterr().err
    assert "garbage.json: not a readable result file" in err and str(tmp_path) not in err
    curve = tmp_path / "curve.json"
    curve.write_text(json.dumps({"name": "c", "results": {"bpp": [1.0]}}))
    assert (
        main(["combine", str(tmp_path / "first.json"), str(curve), "--output", str(tmp_path / "x.json")]) == 1
    )
    assert "no per-image points" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_classic_codec_parts_join_in_any_point_order(image_folder, tmp_path):
    paths = []
    for name, extra in (("first", ["--max-images", "2"]), ("rest", ["--skip-images", "2"])):
        paths.append(tmp_path / f"{name}.json")
        assert main(["eval", str(image_folder), "--codec", "jpeg", "--qualities", "20", "80", "--no-progress",
                     "--output", str(paths[-1]), *extra]) == 0  # fmt: skip
    rest = json.loads(paths[1].read_text())
    rest["details"]["points"].reverse()  # the points' order is not what matches them
    paths[1].write_text(json.dumps(rest))
    out = tmp_path / "all.json"
    assert main(["combine", *map(str, paths), "--output", str(out)]) == 0
    whole = tmp_path / "whole.json"
    assert main(["eval", str(image_folder), "--codec", "jpeg", "--qualities", "20", "80", "--no-progress",
                 "--output", str(whole)]) == 0  # fmt: skip
    joined, reference = json.loads(out.read_text()), json.loads(whole.read_text())
    assert joined["details"]["images"] == 4
    for key in ("bpp", "psnr-rgb"):
        assert joined["results"][key] == pytest.approx(reference["results"][key]), key
