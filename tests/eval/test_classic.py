"""Classic codecs through Pillow: real files, honest metrics."""

from __future__ import annotations

import io
import math
import time

import pytest
from helpers import random_image
from PIL import Image

from gabic.eval.classic import DEFAULT_QUALITIES, available_codecs, classic_rd_curve, encode_classic

CODECS = ["jpeg", "webp", "avif"]


def test_all_three_codecs_are_available():
    assert set(CODECS) <= set(available_codecs())


@pytest.mark.parametrize("codec", CODECS)
def test_encode_classic_reports_real_file_size_and_metrics(codec):
    image = random_image(96, 128, seed=1)
    start = time.perf_counter()
    point = encode_classic(image, codec, 50)
    outer_ms = (time.perf_counter() - start) * 1000
    assert {"bpp", "psnr", "ms_ssim", "encode_ms", "decode_ms", "bytes", "reconstruction"} <= set(point)
    assert point["bpp"] == pytest.approx(point["bytes"] * 8 / (96 * 128))
    assert point["reconstruction"].size == image.size and point["reconstruction"].mode == "RGB"
    assert 15 < point["psnr"] < 60
    assert math.isnan(point["ms_ssim"])  # below the 161-px MS-SSIM limit
    # milliseconds of real work, measured inside the call: positive, and together no longer than the call
    assert point["encode_ms"] > 0 and point["decode_ms"] > 0
    assert point["encode_ms"] + point["decode_ms"] <= outer_ms


@pytest.mark.parametrize("codec", CODECS)
def test_rd_curve_is_sorted_and_rate_grows_with_quality(codec):
    image = random_image(176, 176, seed=2)
    points = classic_rd_curve(image, codec, [10, 50, 90])
    assert [p["quality"] for p in points] == [10, 50, 90]
    assert points[0]["bpp"] < points[-1]["bpp"]
    assert points[0]["psnr"] < points[-1]["psnr"]
    assert all(0 < p["ms_ssim"] <= 1 for p in points)


def test_reconstruction_matches_what_pillow_decodes():
    image = random_image(64, 64, seed=3)
    point = encode_classic(image, "jpeg", 75)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=75, optimize=True, subsampling="4:2:0")
    assert point["bytes"] == len(buffer.getvalue())
    assert list(point["reconstruction"].getdata()) == list(Image.open(buffer).convert("RGB").getdata())


def test_bad_arguments_are_refused():
    image = random_image(32, 32)
    with pytest.raises(ValueError, match="unknown codec"):
        encode_classic(image, "jpegxl", 50)
    with pytest.raises(ValueError, match="quality"):
        encode_classic(image, "jpeg", 101)


def test_default_sweeps_cover_all_codecs():
    assert set(DEFAULT_QUALITIES) == set(CODECS)
    assert all(q == sorted(q) for q in DEFAULT_QUALITIES.values())
