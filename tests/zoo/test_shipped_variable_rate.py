"""The shipped variable-rate models: rate and quality rise with the quality, also between the
paper's four points, and every container decodes exactly."""

from __future__ import annotations

import pytest
import torch
from skimage import data as samples

from gabic import codec, zoo
from gabic.metrics import psnr

QUALITIES = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(zoo.VARIABLE_RATE_FAMILIES.values()))
def test_rate_and_psnr_rise_with_quality(name: str) -> None:
    if not zoo.is_variable_rate(name):
        pytest.fail(f"{name}.safetensors is not in assets/weights")
    from PIL import Image

    photo = Image.fromarray(samples.astronaut()).resize((192, 192))
    x = codec.image_to_tensor(photo)
    rates, qualities = [], []
    for quality in QUALITIES:
        model = zoo.load(name, quality, device="cpu")
        data = codec.compress(model, photo)
        assert codec.read_header(data).quality == quality
        decoded = codec.decompress_tensor(data, model)
        padded, unpad = codec.pad_image(x)
        with torch.no_grad():
            forward = codec.crop_image(model(padded)["x_hat"], unpad).clamp(0, 1)
        assert torch.equal(decoded, forward), f"{name} q{quality} does not decode exactly"
        rates.append(len(data))
        qualities.append(psnr(x, decoded))
    assert rates == sorted(rates) and len(set(rates)) == len(rates), rates
    assert qualities == sorted(qualities), qualities
