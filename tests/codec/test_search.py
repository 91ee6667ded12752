"""Encoder search (``effort``): the containers decode exactly with the unchanged decoder, the search
lowers the image's rate-distortion loss, is repeatable, leaves the model alone, and refuses what it
cannot do."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import TINY_CONFIG, random_image
from PIL import Image
from skimage import data as samples

from gabic import codec, zoo
from gabic.__main__ import main
from gabic.codec.search import annealed_round, rate_distortion_loss, search_lambda, search_latents
from gabic.metrics import psnr
from gabic.models import build_model
from gabic.models.lambdas import lambda_at


def _tiny(arch: str, variable_rate: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    config = TINY_CONFIG.with_rate_levels(4) if variable_rate else TINY_CONFIG
    model = build_model(arch, config, model_id=f"{arch}-tiny", quality=2)
    with torch.no_grad():
        model.g_a[7].weight.mul_(40)  # random weights give latents that all round to their mean
    model.eval().update(force=True)
    return model


def _loss(model: torch.nn.Module, x: torch.Tensor, latents: tuple[torch.Tensor, torch.Tensor] | None,
          layout: str = "compact") -> float:  # fmt: skip
    """The hard-rounded rate-distortion loss of ``latents`` (``None``: the analysis) for ``x``."""
    padded, unpad = codec.pad_image(x, layout=layout)
    cells = codec.coded_cells(x.shape[-2], x.shape[-1], layout)
    quality = codec.coded_quality(model) if model.config.variable_rate else None
    if latents is None:
        with torch.no_grad():
            latents = model.analyse(padded, model.rate_gains(quality))
    with torch.no_grad():
        return float(rate_distortion_loss(model, *latents, x, unpad, quality, cells,
                                          search_lambda(model, quality), None))  # fmt: skip


def test_annealed_rounding_goes_from_soft_to_round():
    values = torch.linspace(-3.4, 3.4, 1001, dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    cold = annealed_round(values, 1e-3, generator)
    clear = (values - torch.floor(values) - 0.5).abs() > 0.05  # not within a hair of a tie
    assert torch.allclose(cold[clear], torch.round(values)[clear], rtol=0, atol=1e-9)
    hot = torch.stack([annealed_round(values, 0.5, generator) for _ in range(200)]).mean(0)
    assert float((hot - values).abs().max()) < 0.25  # soft: the mean follows the value
    assert not torch.equal(hot, torch.round(values))
    ties = annealed_round(torch.full((20_000,), 2.5), 1e-3, generator)  # uniform between 2 and 3
    assert float(ties.mean()) == pytest.approx(2.5, abs=0.02)
    assert float((ties - 2.5).abs().mean()) == pytest.approx(0.25, abs=0.02)
    values = values.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(annealed_round(values, 0.5, generator).sum(), values)
    assert bool((gradient >= 0).all()) and float((gradient > 0).double().mean()) > 0.9


@pytest.mark.parametrize(("arch", "variable_rate", "layout"),
                         [("gabic", True, "compact"), ("zou2022", False, "reference")])  # fmt: skip
def test_searched_container_decodes_exactly_and_costs_less(arch, variable_rate, layout):
    model = _tiny(arch, variable_rate)
    x = codec.image_to_tensor(random_image(40, 72, seed=3))
    data, _, from_encoder = codec.encode_and_reconstruct(model, x, layout=layout, effort=12)
    decoded = codec.decompress_tensor(data, model)
    assert torch.equal(from_encoder, decoded)
    assert codec.compress_tensor(model, x, layout=layout, effort=12) == data  # repeatable
    assert codec.compress_tensor(model, x, layout=layout) != data  # the search changed the latents
    padded, unpad = codec.pad_image(x, layout=layout)
    cells = codec.coded_cells(40, 72, layout)
    quality = codec.coded_quality(model) if variable_rate else None
    searched = search_latents(model, padded, x, unpad, quality, cells, 12)
    assert _loss(model, x, searched, layout) < 0.99 * _loss(model, x, None, layout)


def test_effort_zero_is_the_plain_codec_and_the_model_is_left_alone():
    model = _tiny("gabic", True)
    x = codec.image_to_tensor(random_image(48, 48, seed=4))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    assert codec.compress_tensor(model, x, effort=0) == codec.compress_tensor(model, x)
    codec.compress_tensor(model, x, effort=3)
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters())
    assert not model.training


def test_what_the_search_refuses():
    model = _tiny("gabic", True)
    x = codec.image_to_tensor(random_image(32, 32, seed=5))
    with pytest.raises(ValueError, match="effort must be"):
        codec.compress_tensor(model, x, effort=-1)
    unknown = _tiny("zou2022", False)
    unknown.quality = 0  # e.g. a checkpoint whose λ nobody recorded
    with pytest.raises(ValueError, match="λ the model was trained at"):
        codec.compress_tensor(unknown, x, effort=2)
    assert search_lambda(model, 2.5) == pytest.approx(lambda_at(2.5))


def test_cli_effort(tmp_path, capsys):
    image = tmp_path / "in.png"
    random_image(40, 56, seed=6).save(image)
    weights = tmp_path / "tiny.safetensors"
    zoo.save_weights(_tiny("gabic", True), weights, {"model_id": "gabic-tiny", "quality": 2})
    out = tmp_path / "out.gabic"
    arguments = ["--model", str(weights), "--arch", "gabic", "--quality", "2", "--device", "cpu"]
    assert main(["compress", str(image), str(out), *arguments, "--effort", "4"]) == 0
    assert codec.read_header(out.read_bytes()).width == 56
    with pytest.raises(SystemExit):
        main(["compress", str(image), str(out), *arguments, "--effort", "lots"])
    assert "effort must be a whole number" in capsys.readouterr().err


@pytest.mark.slow
def test_search_lowers_the_real_cost_of_a_photo_with_the_shipped_model():
    """Real bitstreams of a photo with the shipped variable-rate GABIC: 12 steps code it for a lower
    bpp + λ·255²·MSE than the analysis (the search's whole point), and it still decodes exactly."""
    name = "gabic-small-vr"
    if not zoo.is_variable_rate(name):
        pytest.fail(f"{name}.safetensors is not in assets/weights")
    photo = Image.fromarray(samples.astronaut()).resize((160, 160))
    x = codec.image_to_tensor(photo)
    model = zoo.load(name, 2.0, device="cpu")
    costs = []
    for effort in (0, 12):
        data, _, from_encoder = codec.encode_and_reconstruct(model, x, effort=effort)
        decoded = codec.decompress_tensor(data, model)
        assert torch.equal(from_encoder, decoded)
        bpp = len(data) * 8 / (160 * 160)
        costs.append(bpp + lambda_at(2.0) * 255**2 * math.pow(10, -psnr(x, decoded) / 10))
    assert costs[1] < 0.98 * costs[0], costs
