"""``gabic.eval.search_gain``: one photo coded without and with encoder search, both real
containers, both pictures the decoder's."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_CONFIG, random_image

from gabic import codec
from gabic.codec.images import image_to_tensor
from gabic.eval import search_gain
from gabic.metrics import psnr
from gabic.models import build_model


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("gabic", TINY_CONFIG.with_rate_levels(4), model_id="gabic-tiny", quality=2)
    with torch.no_grad():
        model.g_a[7].weight.mul_(40)  # random weights give latents that all round to their mean
    model.eval().update(force=True)
    return model


def test_plain_and_searched_are_the_codecs_own(tiny_model):
    image = random_image(64, 96, seed=5)
    steps: list[int] = []
    gain = search_gain(tiny_model, image, 4, on_step=steps.append)
    assert steps == [1, 2, 3, 4]
    x = image_to_tensor(image)
    for coding, effort in ((gain.plain, 0), (gain.searched, 4)):
        data = codec.compress_tensor(tiny_model, x, effort=effort)
        assert coding.effort == effort and coding.bytes == len(data)
        assert coding.bpp == pytest.approx(len(data) * 8 / (64 * 96))
        decoded = codec.decompress_tensor(data, tiny_model)
        assert coding.reconstruction.size == (96, 64)
        assert torch.equal(
            image_to_tensor(coding.reconstruction), image_to_tensor(codec.images.tensor_to_image(decoded))
        )
        assert coding.psnr == pytest.approx(psnr(x, decoded))
        assert coding.ms_ssim is None and coding.seconds > 0  # below 161 px: no MS-SSIM
    assert gain.bits_change == pytest.approx(gain.searched.bytes / gain.plain.bytes - 1)
    assert gain.psnr_change == pytest.approx(gain.searched.psnr - gain.plain.psnr)


@pytest.mark.parametrize("effort", [0, -1, 1001])
def test_effort_out_of_range_is_refused(tiny_model, effort):
    with pytest.raises(ValueError, match="effort must be"):
        search_gain(tiny_model, random_image(64, 64, seed=1), effort)
