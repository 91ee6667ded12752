"""Weights I/O: the authors' checkpoint format, our safetensors + model card, shipped names."""

from __future__ import annotations

import json
import os

import pytest
import torch
from helpers import TINY_CONFIG, authors_state_dict, random_image

from gabic import codec, zoo
from gabic.codec.images import image_to_tensor
from gabic.models import PAPER_CONFIG, build_model


@pytest.fixture(scope="module")
def authors_checkpoints(tmp_path_factory) -> dict[str, tuple[torch.nn.Module, object]]:
    folder = tmp_path_factory.mktemp("authors")
    out = {}
    for arch in ("gabic", "zou2022"):
        torch.manual_seed(11)
        model = build_model(arch, PAPER_CONFIG)
        path = folder / f"q3-{arch}-model.pth.tar"
        torch.save({"state_dict": authors_state_dict(model), "epoch": 3}, path)
        out[arch] = (model, path)
    return out


@pytest.mark.slow  # paper-size models loaded and run: 1-3 s each
@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_load_authors_checkpoint(authors_checkpoints, arch):
    source, path = authors_checkpoints[arch]
    assert any(k.startswith("module.entropy_bottleneck._matrix") for k in torch.load(path)["state_dict"])
    model = zoo.load_checkpoint(path, arch=arch, device="cpu")
    assert not model.training and model.arch == arch and model.config == PAPER_CONFIG
    assert model.quality == 3 and model.model_id == f"{arch}-paper"
    loaded = model.state_dict()
    for key, value in source.state_dict().items():
        if key.endswith(("_quantized_cdf", "_offset", "_cdf_length", "scale_table")):
            continue
        assert torch.equal(loaded[key], value), key
    usual = torch.exp(torch.linspace(torch.log(torch.tensor(0.11)), torch.log(torch.tensor(256.0)), 64))
    torch.testing.assert_close(model.gaussian_conditional.scale_table, usual)
    assert model.gaussian_conditional.quantized_cdf.numel() > 0  # update(force=True) ran
    assert model.entropy_bottleneck._quantized_cdf.numel() > 0
    # and it is a working codec
    x = image_to_tensor(random_image(64, 64, seed=4))
    data = codec.compress_tensor(model, x)
    assert codec.decompress_tensor(data, model).shape == x.shape
    assert codec.read_header(data).model_id == f"{arch}-paper"


@pytest.mark.slow  # reads a paper-size checkpoint (and the fixture writes two): several seconds
def test_checkpoint_of_the_other_architecture_lists_the_mismatch(authors_checkpoints):
    _, path = authors_checkpoints["zou2022"]
    with pytest.raises(zoo.CheckpointError) as info:
        zoo.load_checkpoint(path, arch="gabic", device="cpu")
    message = str(info.value)
    assert "missing keys" in message and "conv_b.0.conv.qkv" in message
    assert "unexpected keys" in message and "relative_position_bias_table" in message
    assert str(path) in message


def test_foreign_file_lists_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "resnet.pth.tar"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2), "g_a.0.weight": torch.zeros(1)}}, path)
    with pytest.raises(zoo.CheckpointError) as info:
        zoo.load_checkpoint(path, arch="gabic", device="cpu")
    message = str(info.value)
    assert "missing keys" in message and "unexpected keys: fc.weight" in message
    assert "shape mismatches: g_a.0.weight" in message


def test_files_that_are_not_checkpoints(tmp_path):
    missing = tmp_path / "nope.pth.tar"
    with pytest.raises(zoo.CheckpointError, match="no such file"):
        zoo.load_checkpoint(missing)
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_bytes(b"this is not a torch file at all")
    with pytest.raises(zoo.CheckpointError, match="not a readable"):
        zoo.load_checkpoint(garbage)
    no_tensors = tmp_path / "list.pth.tar"
    torch.save({"state_dict": {"a": [1, 2, 3]}}, no_tensors)
    with pytest.raises(zoo.CheckpointError, match="no state dict of tensors"):
        zoo.load_checkpoint(no_tensors)


def test_our_weights_round_trip_with_fp16_storage_and_model_card(tmp_path):
    torch.manual_seed(3)
    model = build_model("zou2022", TINY_CONFIG).eval()
    path = tmp_path / "zou-test.safetensors"
    card = {"model_id": "zou-test", "quality": 2, "lambda": 0.013, "trained_k": None,
            "recipe": {"epochs": 1}, "data": "none", "steps": 10, "rd": {"bpp": 0.5}}  # fmt: skip
    zoo.save_weights(model, path, card)
    written = json.loads(path.with_suffix(".json").read_text())
    assert written["arch"] == "zou2022" and written["config"] == TINY_CONFIG.to_dict()
    assert {k: written[k] for k in card} == card
    from safetensors.torch import load_file

    stored = load_file(str(path))
    assert stored["g_a.0.weight"].dtype == torch.float16
    assert stored["gaussian_conditional._quantized_cdf"].dtype == torch.int32
    # constants of the architecture stay fp32: 1e-9 would be flushed to 0 in fp16
    assert stored["gaussian_conditional.likelihood_lower_bound.bound"].item() == pytest.approx(1e-9)
    loaded = zoo.load_weights(path, device="cpu")
    assert loaded.arch == "zou2022" and loaded.config == TINY_CONFIG and not loaded.training
    assert loaded.model_id == "zou-test" and loaded.quality == 2 and loaded.card["lambda"] == 0.013
    for key, value in model.state_dict().items():
        got = loaded.state_dict()[key]
        assert got.dtype == value.dtype, key  # upcast back to float32
        if value.is_floating_point() and not key.endswith(("scale_table", "bound")):
            assert torch.equal(got, value.half().float()), key
        else:
            assert torch.equal(got, value), key
    # fp32 storage keeps the weights exactly
    zoo.save_weights(model, tmp_path / "full.safetensors", card, half=False)
    full = zoo.load_weights(tmp_path / "full.safetensors", device="cpu")
    assert all(torch.equal(full.state_dict()[k], v) for k, v in model.state_dict().items())


def test_load_weights_errors(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "x.safetensors"
    zoo.save_weights(build_model("gabic", TINY_CONFIG), path, {"model_id": "x", "quality": 1})
    with pytest.raises(zoo.CheckpointError, match="does not fit"):
        zoo.load_weights(path, arch="zou2022", device="cpu")
    path.with_suffix(".json").unlink()
    with pytest.raises(zoo.CheckpointError, match="--arch"):
        zoo.load_weights(path, device="cpu")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 20)
    with pytest.raises(zoo.CheckpointError, match="not a readable safetensors"):
        zoo.load_weights(bad, arch="gabic", device="cpu")


def test_shipped_names_resolve_through_weights_dir(use_random_weights):
    model = zoo.load("gabic-small", 2, device="cpu")
    assert model.model_id == "gabic-small" and model.quality == 2 and model.config == TINY_CONFIG
    assert zoo.load("gabic-small", 2, device="cpu") is not model  # a new model every call
    assert zoo.available("zou2022-small") == [1, 2, 3, 4]
    assert zoo.load_model("zou2022-small", 4, device="cpu").arch == "zou2022"
    path = use_random_weights / "gabic-small-q1.safetensors"
    assert zoo.load_model(str(path), device="cpu").arch == "gabic"
    with pytest.raises(KeyError, match="unknown model"):
        zoo.load("cheng2020", 1)
    with pytest.raises(ValueError, match="quality"):
        zoo.load("gabic-small", 7)
    with pytest.raises(ValueError, match="pass a quality"):
        zoo.load_model("gabic-small")
    with pytest.raises(ValueError, match="neither a shipped model"):
        zoo.load_model("weights.bin")


def test_missing_shipped_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(tmp_path))
    assert zoo.available("gabic-small") == []
    with pytest.raises(FileNotFoundError, match="not shipped yet"):
        zoo.load("gabic-small", 1, device="cpu")


def test_files_with_fp16_bounds_get_the_architecture_constants_back(tmp_path):
    """Weights shipped before the bounds were kept in fp32 hold a likelihood bound of 0 (1e-9
    flushed by fp16): loading, and training from them, uses the model's own constants."""
    from safetensors.torch import load_file, save_file

    from gabic.train.loop import load_weights_into

    torch.manual_seed(4)
    model = build_model("gabic", TINY_CONFIG).eval()
    path = tmp_path / "old.safetensors"
    zoo.save_weights(model, path, {"model_id": "old", "quality": 1})
    state = {k: (v.half() if v.is_floating_point() and "_quantized_cdf" not in k else v)
             for k, v in load_file(str(path)).items()}  # fmt: skip
    assert state["entropy_bottleneck.likelihood_lower_bound.bound"].item() == 0.0
    save_file(state, str(path), metadata={"arch": "gabic", "format": "gabic-explorer/1"})
    fine_tuned = build_model("gabic", TINY_CONFIG)
    load_weights_into(fine_tuned, path)  # what python -m gabic train --init-from does
    for loaded in (zoo.load_weights(path, device="cpu"), fine_tuned):
        for name in ("entropy_bottleneck.likelihood_lower_bound.bound", "gaussian_conditional.scale_bound"):
            assert torch.equal(loaded.state_dict()[name], model.state_dict()[name]), name
        loaded.train()
        out = loaded(torch.rand(1, 3, 64, 64))
        assert all(torch.isfinite(-torch.log2(v).sum()) for v in out["likelihoods"].values())


def test_shipped_models_do_not_share_state():
    """The issue's example, on the real shipped weights: one caller's k or weights never reach another's."""
    a = zoo.load("gabic-small", 3, device="cpu")
    a.set_k(12)
    b = zoo.load("gabic-small", 3, device="cpu")
    assert b.k == 9 and b is not a
    with torch.no_grad():
        a.g_a[0].weight.zero_()
    assert b.g_a[0].weight.abs().sum() > 0
    assert zoo.load("gabic-small", 3, device="cpu").g_a[0].weight.abs().sum() > 0
    a.card["note"] = "changed"
    assert "note" not in zoo.load("gabic-small", 3, device="cpu").card
    assert (b.model_id, b.quality, b.card["model_id"]) == ("gabic-small", 3, "gabic-small")


def test_loading_leaves_the_callers_random_stream_alone(use_random_weights):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    zoo.load("zou2022-small", 1, device="cpu")
    zoo.load_weights(use_random_weights / "gabic-small-q2.safetensors", device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_a_rewritten_shipped_file_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(tmp_path))
    path = tmp_path / "gabic-small-q1.safetensors"
    for seed in (0, 1):
        torch.manual_seed(seed)
        written = build_model("gabic", TINY_CONFIG)
        zoo.save_weights(written, path, {"model_id": "gabic-small", "quality": 1}, half=False)
        os.utime(path, ns=(seed * 10**9, seed * 10**9))  # a new modification time, however fast
        loaded = zoo.load("gabic-small", 1, device="cpu")
        assert torch.equal(loaded.g_a[0].weight, written.g_a[0].weight)


def test_a_one_rate_family_refuses_a_fractional_quality_and_names_its_variable_rate_family() -> None:
    from gabic.zoo.shipped import shipped_path

    with pytest.raises(ValueError, match="load 'gabic-small-vr'"):
        shipped_path("gabic-small", 2.5)
    with pytest.raises(ValueError, match="load 'zou2022-small-vr'"):
        shipped_path("zou2022-small", 3.25)
    assert shipped_path("gabic-small", 2).name == "gabic-small-q2.safetensors"
