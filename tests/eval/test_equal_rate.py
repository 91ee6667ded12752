"""Equal-rate comparison: bisection over a continuous quality for the same real bpp."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_CONFIG, random_image

from gabic.eval import equal_rate, quality_for_bpp
from gabic.eval.equal_rate import real_bpp
from gabic.models import build_model


def _state(arch: str, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = build_model(arch, TINY_CONFIG.with_rate_levels(4))
    with torch.no_grad():
        for level in range(4):
            model.y_gain.log_gain[level].fill_(0.5 * (level - 1.5))
            model.y_gain.log_inverse_gain[level].fill_(-0.5 * (level - 1.5))
        model.g_a[7].weight.mul_(40)  # random weights give latents that all round to their mean
    return model.state_dict()


def _model_at(arch: str, seed: int):
    state = _state(arch, seed)

    def build(quality: float) -> torch.nn.Module:
        model = build_model(arch, TINY_CONFIG.with_rate_levels(4), model_id=f"{arch}-vr", quality=quality)
        model.load_state_dict(state)
        return model.eval()

    return build


PHOTO = random_image(96, 128, seed=11)


def test_bisection_finds_the_closest_quality():
    model_at = _model_at("zou2022", 1)
    low, high = real_bpp(model_at(1.0), PHOTO), real_bpp(model_at(4.0), PHOTO)
    assert low < high
    target = (low + high) / 2
    search = quality_for_bpp(model_at, PHOTO, target)
    assert 1.0 < search.quality < 4.0
    assert len(search.steps) <= 11
    # no quality one hundredth away is closer to the target
    for neighbour in (search.quality - 0.01, search.quality + 0.01):
        assert abs(real_bpp(model_at(neighbour), PHOTO) - target) >= abs(search.bpp - target) - 1e-12


def test_targets_outside_the_range_give_the_ends():
    model_at = _model_at("zou2022", 1)
    assert quality_for_bpp(model_at, PHOTO, 1e-3).quality == 1.0
    assert quality_for_bpp(model_at, PHOTO, 1e3).quality == 4.0


@pytest.mark.slow  # two searches' worth of real encodes; the app's equal-rate section runs one fast
def test_equal_rate_matches_the_rates_and_reports_the_difference():
    result = equal_rate(_model_at("gabic", 2), _model_at("zou2022", 1), PHOTO, quality=2.5)
    assert result.reference.quality == 2.5
    assert result.search.target_bpp == pytest.approx(result.reference.bpp)
    far = abs(real_bpp(_model_at("zou2022", 1)(2.5), PHOTO) - result.reference.bpp)
    assert abs(result.bpp_difference) <= far
    assert result.psnr_difference == pytest.approx(result.matched.psnr - result.reference.psnr)
    difference = result.bit_difference()
    assert difference.shape == (PHOTO.height, PHOTO.width)
    assert difference.mean() == pytest.approx(
        result.reference.bpp_estimated - result.matched.bpp_estimated, rel=1e-4
    )
