"""Training loop: it learns, resumes exactly, and DDP replicas stay identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TINY_CONFIG, random_image
from safetensors.torch import load_file

from gabic import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("data")
    for split, count in (("train", 4), ("val", 2)):
        (base / split).mkdir()
        for i in range(count):
            random_image(80, 96, seed=i + (10 if split == "val" else 0)).save(base / split / f"{i}.png")
    config = base / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG.to_dict()))
    return base / "train", base / "val", config


def _args(data: tuple[Path, Path, Path], out: Path, steps: int, **extra: object) -> list[str]:
    train_dir, val_dir, config = data
    args = ["--arch", str(extra.pop("arch", "gabic")), "--config", str(config), "--lmbda", "0.01",
            "--train-dir", str(train_dir), "--val-dir", str(val_dir), "--out", str(out),
            "--steps", str(steps), "--batch-size", "2", "--patch-size", "64", "--val-crop", "64",
            "--val-every", "2", "--warmup", "2", "--no-progress", "--threads", "1", "--seed", "3"]  # fmt: skip
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def _run(argv: list[str]) -> None:
    assert train.main(argv) == 0


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_training_writes_logs_checkpoints_and_lowers_the_loss(tiny_data, tmp_path, arch):
    out = tmp_path / "run"
    _run(_args(tiny_data, out, 12, arch=arch, lr=1e-3))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 13))
    assert all(k in log[0] for k in ("loss", "bpp", "mse", "psnr", "aux", "lr"))
    assert sum(r["loss"] for r in log[-3:]) < sum(r["loss"] for r in log[:3])
    val = [json.loads(line) for line in (out / "val.jsonl").read_text().splitlines()]
    assert [v["step"] for v in val] == [2, 4, 6, 8, 10, 12]
    for name in ("last.pt", "weights.safetensors", "best.safetensors", "state.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "state.json").read_text())["state"]["step"] == 12


def test_resume_is_exact(tiny_data, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    _run(_args(tiny_data, straight, 4))
    _run(_args(tiny_data, resumed, 2))
    _run(_args(tiny_data, resumed, 4))
    a = load_file(str(straight / "weights.safetensors"))
    b = load_file(str(resumed / "weights.safetensors"))
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert train.weights_checksum  # the helper used for replicas exists


def test_fine_tuning_starts_from_given_weights(tiny_data, tmp_path):
    base = tmp_path / "base"
    _run(_args(tiny_data, base, 2, seed=7))  # a different initialisation than the tuned run's seed
    tuned = tmp_path / "tuned"
    _run(_args(tiny_data, tuned, 1, init_from=base / "weights.safetensors", warmup=1000000))
    # with an almost-zero learning rate (long warm-up) the first step barely moves the weights
    a = load_file(str(base / "weights.safetensors"))
    b = load_file(str(tuned / "weights.safetensors"))
    key = "g_a.0.weight"
    assert (a[key] - b[key]).abs().max() < 1e-3


def test_ddp_two_cpu_processes_keep_identical_weights(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "gabic", "train", *_args(tiny_data, out, 3), "--device", "cpu"]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((out / "state.json").read_text())
    checksums = state["replica_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert state["batch_size"] == 4
