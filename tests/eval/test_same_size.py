"""Classic codecs at the same size (issue 16): the search lands on the best setting not above
the target bpp."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gabic.eval.classic import available_codecs, encode_classic
from gabic.eval.same_size import QUALITY_RANGE, classic_at_bpp, classic_at_same_size

CODECS = [c for c in ("jpeg", "webp", "avif") if c in available_codecs()]
#: Stated tolerance: at 0.6-1.2 bpp one quality step moves a photo's size by a few percent.
TOLERANCE = 0.10


def generated_photo(height: int = 128, width: int = 192, seed: int = 0) -> Image.Image:
    """Smooth shapes, edges and mild texture: compresses like a photograph, not like noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    yy, xx = rows / max(height, width), cols / max(height, width)
    image = np.stack([0.5 + 0.4 * np.sin(6 * xx + 2 * c) * np.cos(4 * yy - c) for c in range(3)], -1)
    for _ in range(6):  # a few discs with sharp borders
        cy, cx, r = rng.random() * height, rng.random() * width, 8 + rng.random() * 24
        image[(rows - cy) ** 2 + (cols - cx) ** 2 < r * r] = rng.random(3)
    image += rng.normal(0, 0.02, image.shape)
    return Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), mode="RGB")


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("target", [0.6, 1.2])
def test_lands_on_the_best_setting_not_above_the_target(codec, target):
    image = generated_photo()
    result = classic_at_bpp(image, codec, target)
    assert result["fits"] and result["target_bpp"] == target
    assert result["bpp"] <= target
    assert result["bpp"] >= target * (1 - TOLERANCE), (result["quality"], result["tried"])
    assert result["tried"][result["quality"]] == pytest.approx(result["bpp"])
    if result["quality"] < QUALITY_RANGE[codec][1]:  # one setting more overshoots
        assert encode_classic(image, codec, result["quality"] + 1)["bpp"] > target
    assert result["reconstruction"].size == image.size and 15 < result["psnr"] < 60
    assert len(result["tried"]) <= 9  # bisection, not a sweep


def test_a_target_below_the_lowest_setting_gives_the_lowest_setting_and_says_so():
    image = generated_photo(seed=1)
    result = classic_at_bpp(image, "jpeg", 0.001)
    assert not result["fits"] and result["quality"] == QUALITY_RANGE["jpeg"][0]
    assert result["bpp"] > 0.001


def test_all_codecs_at_once_and_bad_arguments():
    image = generated_photo(64, 64, seed=2)
    results = classic_at_same_size(image, 1.0, codecs=["JPEG", "webp"])
    assert list(results) == ["jpeg", "webp"] and all(r["bpp"] <= 1.0 for r in results.values())
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive"):
            classic_at_bpp(image, "jpeg", bad)
    with pytest.raises(ValueError, match="unknown codec"):
        classic_at_bpp(image, "jpegxl", 1.0)
