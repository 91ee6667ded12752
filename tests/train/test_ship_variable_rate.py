"""A variable-rate run ships as one file that zoo.load takes at any quality in 1..4."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TINY_CONFIG, random_image

from gabic import codec, zoo
from gabic.train import cli
from gabic.train.ship import ship

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.slow  # a training run (the variable_rate_run fixture)
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


@pytest.mark.slow  # a training run (the variable_rate_run fixture)
def test_a_gpu_round_comes_back_as_a_run_folder_that_ships(variable_rate_run, tmp_path):
    """training/gpu_round.py: ``pack`` on the device (fp16 weights, logs in one tar.gz), ``unpack``
    here (a run folder with the weights under the name they were packed from), then ``gabic ship``
    gives the same tensors as shipping the run folder itself."""
    import importlib.util
    import shutil

    from safetensors.torch import load_file

    spec = importlib.util.spec_from_file_location("gpu_round", ROOT / "training" / "gpu_round.py")
    gpu_round = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_round)
    device_root = tmp_path / "device"
    shutil.copytree(variable_rate_run, device_root / "zou2022-small-vr")
    (device_root / "zou2022-small-vr.stdout").write_text("console\n")
    returned = tmp_path / "returned"
    assert (
        gpu_round.main(
            ["pack", "--root", str(device_root), "--arch", "zou2022", "--to", str(returned), "--logs"]
        )
        == 0
    )
    assert sorted(p.name for p in returned.iterdir()) == ["logs.tar.gz", "zou2022-small-vr.safetensors"]

    runs = tmp_path / "runs"
    assert gpu_round.main(["unpack", str(returned), "--suffix", "gpu9", "--runs", str(runs)]) == 0
    unpacked = runs / "zou2022-small-vr-gpu9"
    for name in ("best.safetensors", "state.json", "val.jsonl", "log.jsonl", "stdout.txt"):
        assert (unpacked / name).is_file(), name
    assert (unpacked / "stdout.txt").read_text() == "console\n"
    assert (
        gpu_round.main(["unpack", str(returned), "--suffix", "gpu9", "--runs", str(runs)]) == 1
    )  # never overwrites

    shipped = ship(unpacked, "zou2022-small", None, out_dir=tmp_path / "from-device")
    reference = ship(variable_rate_run, "zou2022-small", None, out_dir=tmp_path / "direct")
    card = json.loads(shipped.with_suffix(".json").read_text())
    assert card["training"]["weights_file"] == "best.safetensors"
    a, b = load_file(str(shipped)), load_file(str(reference))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
