"""A variable-rate run ships as one file that zoo.load takes at any quality in 1..4."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TINY_CONFIG, random_image

from gabic import codec, zoo
from gabic.train import cli
from gabic.train.ship import ship


@pytest.fixture(scope="module")
def variable_rate_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("vr")
    for split, count in (("train", 3), ("val", 1)):
        (base / split).mkdir()
        for i in range(count):
            random_image(72, 72, seed=i + 20 * (split == "val")).save(base / split / f"{i}.png")
    (base / "tiny.json").write_text(json.dumps(TINY_CONFIG.to_dict()))
    out = base / "run"
    argv = ["--arch", "zou2022", "--config", str(base / "tiny.json"), "--variable-rate",
            "--train-dir", str(base / "train"), "--val-dir", str(base / "val"), "--out", str(out),
            "--steps", "3", "--batch-size", "2", "--patch-size", "64", "--val-crop", "64", "--val-every", "3",
            "--warmup", "1", "--no-progress", "--threads", "1"]  # fmt: skip
    assert cli.main(argv) == 0
    return out


def test_variable_rate_run_ships_one_file_for_all_qualities(variable_rate_run, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="without --quality"):
        ship(variable_rate_run, "zou2022-small", 3, out_dir=tmp_path)
    target = ship(variable_rate_run, "zou2022-small", None, out_dir=tmp_path)
    assert target.name == "zou2022-small.safetensors"
    card = json.loads(target.with_suffix(".json").read_text())
    assert card["quality"] is None and card["config"]["rate_levels"] == 4
    assert card["lambdas"] == {"1": 0.0067, "2": 0.013, "3": 0.025, "4": 0.0483}
    assert "geometric mean" in card["training"]["selection"]
    validation = card["validation"]
    assert set(validation["qualities"]) == {"1", "2", "3", "4"}
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(tmp_path))
    model = zoo.load("zou2022-small", 3.3, device="cpu")
    data = codec.compress(model, random_image(64, 64))
    assert codec.read_header(data).quality == 3.3
    assert codec.decompress(data).size == (64, 64)


def test_one_rate_run_needs_its_quality(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "state.json").write_text(json.dumps({"config": TINY_CONFIG.to_dict(), "arch": "gabic"}))
    with pytest.raises(ValueError, match="pass --quality"):
        ship(run, "gabic-small", None, out_dir=tmp_path)
