"""Untrusted weights files: no code runs, clear messages."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from helpers import TINY_CONFIG

from gabic import zoo
from gabic.models import build_model


class _Payload:
    """Unpickling this would run a shell command (here a harmless ``touch``)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "q1-model.pth.tar"
    torch.save({"state_dict": {"g_a.0.weight": torch.zeros(1)}, "epoch": _Payload(marker)}, path)
    with pytest.raises(zoo.CheckpointError, match="refused.*could run code"):
        zoo.load_checkpoint(path, arch="gabic", device="cpu")
    assert not marker.exists()
    # sanity: the file really is malicious when loaded unsafely (in a throwaway process state)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_legacy_raw_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned-raw"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    with pytest.raises(zoo.CheckpointError):
        zoo.load_checkpoint(path, arch="zou2022", device="cpu")
    assert not marker.exists()
    with pytest.raises(zoo.CheckpointError):
        zoo.load_model(str(path), arch="zou2022", device="cpu")
    assert not marker.exists()


def test_wrong_architecture_lists_the_mismatch(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    zoo.save_weights(build_model("zou2022", TINY_CONFIG), path, {"model_id": "tiny", "quality": 1})
    with pytest.raises(zoo.CheckpointError) as info:
        zoo.load_weights(path, arch="gabic", device="cpu")
    message = str(info.value)
    assert "missing keys" in message and "lin_edge" in message
    assert "unexpected keys" in message and "relative_position" in message


def test_truncated_and_garbage_weight_files(tmp_path):
    torch.manual_seed(0)
    good = tmp_path / "good.pth.tar"
    torch.save({"state_dict": build_model("gabic", TINY_CONFIG).state_dict()}, good)
    data = good.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        bad = tmp_path / f"cut{cut}.pth.tar"
        bad.write_bytes(data[:cut])
        with pytest.raises(zoo.CheckpointError):
            zoo.load_checkpoint(bad, device="cpu")
    safetensors = tmp_path / "cut.safetensors"
    zoo.save_weights(build_model("gabic", TINY_CONFIG), safetensors, {"model_id": "x", "quality": 1})
    blob = safetensors.read_bytes()
    safetensors.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(zoo.CheckpointError, match="not a readable safetensors"):
        zoo.load_weights(safetensors, device="cpu")
