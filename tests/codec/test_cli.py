"""``python -m gabic compress/decompress``: works with shipped names and weight files; errors are
one readable line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_CONFIG, random_image
from PIL import Image

from gabic import codec, zoo
from gabic.__main__ import main
from gabic.models import build_model

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None, wait: bool = True):
    """``python -m gabic *args``: the finished process (a CompletedProcess), or with ``wait=False``
    the running one (a Popen with stdout and stderr pipes)."""
    environment = {**os.environ, **(env or {})}
    command = [sys.executable, "-m", "gabic", *map(str, args)]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                env=environment)  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT, env=environment)


@pytest.fixture()
def image_path(tmp_path) -> Path:
    path = tmp_path / "in.png"
    random_image(50, 70, seed=5).save(path)
    return path


@pytest.mark.slow
def test_shipped_model_round_trip_in_a_real_process(use_random_weights, image_path, tmp_path):
    """``python -m gabic compress`` and ``decompress`` in real processes, all at once: the real
    compress gives the bytes of the same command run in this process, the real decompress of those
    bytes gives the decoder's pixels; a third process compresses a text file: one line on stderr,
    status 1, no traceback. (One OpenMP thread everywhere, as in this process.)"""
    env = {"GABIC_WEIGHTS_DIR": str(use_random_weights), "OMP_NUM_THREADS": "1"}
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    refused = run_cli("compress", text, tmp_path / "x.gabic", "--model", "gabic-small", "--quality", "1",
                      "--device", "cpu", env=env, wait=False)  # fmt: skip
    arguments = ["--model", "gabic-small", "--quality", "2", "--k", "4", "--device", "cpu"]
    container, here, output = tmp_path / "out.gabic", tmp_path / "here.gabic", tmp_path / "out.png"
    compressing = run_cli("compress", image_path, container, *arguments, env=env, wait=False)
    assert main(["compress", str(image_path), str(here), *arguments]) == 0
    decompressing = run_cli("decompress", here, output, "--device", "cpu", env=env, wait=False)

    stdout, stderr = compressing.communicate(timeout=300)
    assert compressing.returncode == 0, stderr
    assert "bpp" in stdout and "70×50" in stdout
    assert container.read_bytes() == here.read_bytes()
    header = codec.read_header(container.read_bytes())
    assert (header.model_id, header.quality, header.k) == ("gabic-small", 2, 4)
    stdout, stderr = decompressing.communicate(timeout=300)
    assert decompressing.returncode == 0, stderr
    assert "k=4" in stdout and "bpp" in stdout
    model = zoo.load("gabic-small", 2, device="cpu")
    expected = codec.decompress(container.read_bytes(), model)
    assert np.array_equal(np.asarray(Image.open(output).convert("RGB")), np.asarray(expected))

    _, stderr = refused.communicate(timeout=300)
    assert refused.returncode == 1
    assert stderr.strip().count("\n") == 0 and stderr.startswith("error: ")
    assert "not an image" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (
            lambda d, img: [
                "compress",
                d / "missing.png",
                d / "o.gabic",
                "--model",
                "gabic-small",
                "--quality",
                "1",
            ],
            "no such file",
        ),  # fmt: skip
        (lambda d, img: ["compress", img, d / "o.gabic", "--model", "cheng2020"], "neither a shipped model"),
        (lambda d, img: ["compress", img, d / "o.gabic", "--model", "gabic-small"], "pass a quality"),
        (
            lambda d, img: [
                "compress",
                img,
                d / "o.gabic",
                "--model",
                "zou2022-small",
                "--quality",
                "1",
                "--k",
                "3",
            ],
            "k applies to GABIC only",
        ),  # fmt: skip
        (
            lambda d, img: [
                "compress",
                img,
                d / "o.gabic",
                "--model",
                "gabic-small",
                "--quality",
                "1",
                "--k",
                "40",
            ],
            "k must be in 1..15",
        ),  # fmt: skip
        (
            lambda d, img: ["compress", img, d / "o.gabic", "--model", d / "nope.pth.tar", "--arch", "gabic"],
            "no such file",
        ),
        (lambda d, img: ["decompress", d / "missing.gabic", d / "o.png"], "missing.gabic"),
        (lambda d, img: ["decompress", img, d / "o.png"], "not a GABIC container"),
    ],
)
def test_error_messages(use_random_weights, image_path, tmp_path, capsys, make_args, message):
    assert main([str(a) for a in make_args(tmp_path, image_path)] + ["--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.strip().count("\n") == 0
    assert message in err


def test_corrupt_container_and_unknown_model(use_random_weights, image_path, tmp_path, capsys):
    container = tmp_path / "c.gabic"
    assert main(["compress", str(image_path), str(container), "--model", "zou2022-small", "--quality", "3",
                 "--device", "cpu"]) == 0  # fmt: skip
    data = bytearray(container.read_bytes())
    data[-3] ^= 0xFF
    corrupt = tmp_path / "corrupt.gabic"
    corrupt.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["decompress", str(corrupt), str(tmp_path / "o.png"), "--device", "cpu"]) == 1
    assert "checksum" in capsys.readouterr().err
    # a container naming a model that is not shipped
    torch.manual_seed(0)
    model = build_model("gabic", TINY_CONFIG)
    model.model_id, model.quality = "my-own-model", 1
    foreign = tmp_path / "foreign.gabic"
    foreign.write_bytes(codec.compress(model, image_path))
    assert main(["decompress", str(foreign), str(tmp_path / "o.png"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "'my-own-model'" in err and "not a shipped model" in err and err.count("\n") == 1


def test_weights_file_with_arch(tmp_path, image_path, capsys):
    torch.manual_seed(2)
    weights = tmp_path / "mine.safetensors"
    zoo.save_weights(build_model("zou2022", TINY_CONFIG), weights, {"model_id": "mine", "quality": 0})
    container, output = tmp_path / "o.gabic", tmp_path / "o.png"
    assert main(["compress", str(image_path), str(container), "--model", str(weights), "--arch", "zou2022",
                 "--device", "cpu"]) == 0  # fmt: skip
    # unshipped weights: decompress needs the model too
    assert main(["decompress", str(container), str(output), "--device", "cpu"]) == 1
    assert "not a shipped model" in capsys.readouterr().err
    assert main(["decompress", str(container), str(output), "--model", str(weights), "--device", "cpu"]) == 0
    assert Image.open(output).size == (70, 50)
    # an authors'-style checkpoint path with --arch goes through load_checkpoint (paper config)
    torch.save({"state_dict": {"g_a.0.weight": torch.zeros(1)}}, tmp_path / "q1-model.pth.tar")
    capsys.readouterr()
    assert main(["compress", str(image_path), str(container), "--model", str(tmp_path / "q1-model.pth.tar"),
                 "--arch", "gabic", "--device", "cpu"]) == 1  # fmt: skip
    assert "does not fit GABIC" in capsys.readouterr().err
