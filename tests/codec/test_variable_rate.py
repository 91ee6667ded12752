"""Variable-rate models in the codec and the zoo: continuous quality, container version 2."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import TINY_CONFIG, random_image

from gabic import codec, zoo
from gabic.__main__ import main
from gabic.models import build_model

VR_CONFIG = TINY_CONFIG.with_rate_levels(4)


def _variable_rate_model(quality: float, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model("gabic", VR_CONFIG, model_id="gabic-tiny-vr", quality=quality)
    with torch.no_grad():  # distinct gains per level, so qualities really differ
        for level in range(4):
            model.y_gain.log_gain[level].fill_(0.4 * (level - 1.5))
            model.y_gain.log_inverse_gain[level].fill_(-0.4 * (level - 1.5))
        model.g_a[7].weight.mul_(40)  # random weights give latents that all round to their mean
    model.eval().update(force=True)
    return model


def test_quality_is_recorded_in_hundredths_and_decoding_is_exact():
    image = random_image(70, 90, seed=3)
    x = codec.image_to_tensor(image)
    model = _variable_rate_model(2.537)
    data = codec.compress(model, image)
    header = codec.read_header(data)
    assert header.version == codec.COMPACT_VERSIONS[codec.VARIABLE_RATE_VERSION] and header.variable_rate
    assert header.quality == pytest.approx(2.54)
    decoded = codec.decompress_tensor(data, model)
    padded, unpad = codec.pad_image(x)
    with torch.no_grad():
        forward = model(padded, 2.54, coded_cells=codec.coded_cells(70, 90))["x_hat"]
    assert torch.equal(decoded, codec.crop_image(forward, unpad).clamp(0, 1))
    for layout in codec.LAYOUTS:  # the image from the encoder's ŷ, at the recorded quality, either layout
        data = codec.compress_tensor(model, x, layout=layout)
        same, _, from_encoder = codec.encode_and_reconstruct(model, x, layout=layout)
        assert same == data and torch.equal(from_encoder, codec.decompress_tensor(data, model)), layout


def test_a_model_at_another_quality_decodes_the_recorded_one():
    image = random_image(64, 64, seed=4)
    data = codec.compress(_variable_rate_model(1.5), image)
    same_weights_other_point = _variable_rate_model(3.0)
    assert torch.equal(
        codec.decompress_tensor(data, same_weights_other_point),
        codec.decompress_tensor(data, _variable_rate_model(1.5)),
    )


def test_rate_rises_with_quality_between_the_trained_points():
    image = random_image(128, 128, seed=5)
    sizes = [len(codec.compress(_variable_rate_model(q), image)) for q in (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_one_rate_files_stay_version_1_and_mismatches_are_refused():
    torch.manual_seed(0)
    one_rate = build_model("gabic", TINY_CONFIG).eval()
    one_rate.update(force=True)
    data = codec.compress(one_rate, random_image(64, 64))
    assert data[4] == codec.FORMAT_VERSION == 1
    with pytest.raises(ValueError, match="quality must be in 1..4"):
        codec.compress(_variable_rate_model(4.5), random_image(64, 64))


def test_zoo_variable_rate_family(tmp_path, monkeypatch):
    model = _variable_rate_model(1.0)
    zoo.save_weights(
        model, tmp_path / "gabic-small.safetensors", {"model_id": "gabic-small", "quality": None}
    )
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(tmp_path))
    assert zoo.is_variable_rate("gabic-small") and not zoo.is_variable_rate("zou2022-small")
    assert zoo.available("gabic-small") == [1, 2, 3, 4]
    loaded = zoo.load("gabic-small", quality=2.5, device="cpu")
    assert loaded.quality == 2.5 and loaded.config.rate_levels == 4
    with pytest.raises(ValueError, match="1..4"):
        zoo.load("gabic-small", quality=0.5)
    data = codec.compress(loaded, random_image(64, 64))
    assert codec.read_header(data).quality == 2.5
    restored = codec.decompress(data)  # model resolved from the container at its quality
    assert restored.size == (64, 64)
    card = json.loads((tmp_path / "gabic-small.json").read_text())
    assert card["config"]["rate_levels"] == 4


def test_one_rate_family_refuses_a_quality_between_points(use_random_weights):
    with pytest.raises(ValueError, match="one model per quality"):
        zoo.load("gabic-small", 2.5)
    assert zoo.load("gabic-small", 3.0).quality == 3


def test_cli_takes_a_continuous_quality(tmp_path, monkeypatch, capsys):
    zoo.save_weights(
        _variable_rate_model(1.0), tmp_path / "zou2022-small.safetensors", {"model_id": "zou2022-small"}
    )
    # the family is GABIC weights under another name here: only the file layout matters for the CLI
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(tmp_path))
    random_image(64, 80).save(tmp_path / "in.png")
    assert main(["compress", str(tmp_path / "in.png"), str(tmp_path / "out.gabic"),
                 "--model", "zou2022-small", "--quality", "2.25", "--device", "cpu"]) == 0  # fmt: skip
    assert codec.read_header((tmp_path / "out.gabic").read_bytes()).quality == 2.25
    assert main(["decompress", str(tmp_path / "out.gabic"), str(tmp_path / "out.png")]) == 0
    assert "q2.25" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: a usage message and status 2
        main(["compress", str(tmp_path / "in.png"), str(tmp_path / "x.gabic"),
              "--model", "zou2022-small", "--quality", "5"])  # fmt: skip
    assert "quality must be in 1..4" in capsys.readouterr().err
