"""A variable-rate model lent at another quality shares its weights and codes exactly as a model
loaded at that quality."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_CONFIG, random_image

from gabic import codec
from gabic.models import build_model

VR_CONFIG = TINY_CONFIG.with_rate_levels(4)


def _model(quality: float) -> torch.nn.Module:
    torch.manual_seed(5)
    model = build_model("zou2022", VR_CONFIG, model_id="zou2022-tiny-vr", quality=quality)
    with torch.no_grad():  # distinct gains per level, so qualities really differ
        for level in range(4):
            model.y_gain.log_gain[level].fill_(0.4 * (level - 1.5))
            model.y_gain.log_inverse_gain[level].fill_(-0.4 * (level - 1.5))
        model.g_a[7].weight.mul_(40)
    model.eval().update(force=True)
    return model


def test_with_quality_codes_as_a_model_loaded_at_that_quality_and_shares_its_weights():
    image = random_image(48, 72, seed=8)
    base = _model(2)
    lent = codec.with_quality(base, 3.456)
    assert lent is not base and lent.quality == 3.46 and base.quality == 2
    assert all(a is b for a, b in zip(lent.parameters(), base.parameters(), strict=True))
    want = codec.compress(_model(3.46), image)
    got = codec.compress(lent, image)
    assert got == want and codec.read_header(got).quality == pytest.approx(3.46)
    assert got != codec.compress(base, image)  # the base still codes at its own quality
    assert codec.with_quality(base, 2.001) is base
    torch.testing.assert_close(codec.decompress_tensor(got, base), codec.decompress_tensor(want, _model(1)))


def test_with_quality_refuses_one_rate_models_and_qualities_out_of_range():
    with pytest.raises(ValueError, match="one-rate"):
        codec.with_quality(build_model("gabic", TINY_CONFIG, quality=2), 3)
    with pytest.raises(ValueError, match="1..4"):
        codec.with_quality(_model(2), 4.5)
