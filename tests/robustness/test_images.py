"""Input policy for images: clear ImageInputError or a documented conversion, never a crash."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import random_image
from PIL import Image

from gabic import codec
from gabic.codec.images import MAX_PIXELS, ImageInputError, image_to_tensor, load_image


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def huge_png(width: int, height: int) -> bytes:
    """A valid-looking PNG header claiming ``width x height`` RGB with a tiny IDAT (a bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, I am text pretending to be a PNG\n")
    with pytest.raises(ImageInputError, match="not an image"):
        load_image(path)
    with pytest.raises(ImageInputError, match="not an image"):
        load_image(b"GIF89a but not really")


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageInputError, match="0 bytes"):
        load_image(empty)
    with pytest.raises(ImageInputError, match="0 bytes"):
        load_image(b"")
    with pytest.raises(ImageInputError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageInputError, match="cannot read"):
        load_image(12345)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_files(fmt, keep):
    buffer = io.BytesIO()
    random_image(64, 64, seed=1).save(buffer, format=fmt)
    data = buffer.getvalue()
    with pytest.raises(ImageInputError):
        load_image(data[: int(len(data) * keep)])


@pytest.mark.parametrize(("width", "height"), [(1, 1), (1, 2000), (2000, 1)])
def test_extreme_aspect_ratios_load_and_code(tiny_models, width, height):
    image = load_image(_png_bytes(random_image(height, width, seed=2)))
    assert image.size == (width, height) and image.mode == "RGB"
    data = codec.compress(tiny_models["zou2022"], image)
    assert codec.decompress(data, tiny_models["zou2022"]).size == (width, height)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(huge_png(20000, 20000))
    assert path.stat().st_size < 2000
    with pytest.raises(ImageInputError, match="decompression bomb|pixel limit"):
        load_image(path)
    # below Pillow's own bomb threshold, our limit refuses it
    with pytest.raises(
        ImageInputError, match=r"too many pixels: 50 megapixels, the limit is 40 megapixels.*\(10000×5000\)"
    ):
        load_image(huge_png(10000, 5000))


@pytest.mark.slow  # a child process that imports PyTorch: several seconds
def test_refusing_a_bomb_allocates_nothing(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(huge_png(20000, 20000))
    # measured in a fresh process: refusing it must not allocate the 1.2 GB of pixels
    script = textwrap.dedent(f"""
        import resource
        from gabic.codec.images import ImageInputError, load_image
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            load_image({str(path)!r})
        except ImageInputError:
            pass
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) < 50_000  # KiB


def test_pixel_limit_is_documented_and_sane():
    assert 20000 * 20000 > MAX_PIXELS >= codec.MAX_CODEC_PIXELS


def test_image_over_the_codec_limit_is_refused_with_a_message(tiny_models):
    image = Image.new("RGB", (4000, 2200))
    assert image.width * image.height < MAX_PIXELS
    with pytest.raises(ValueError, match="codec limit"):
        codec.compress(tiny_models["gabic"], image)


def test_grayscale_is_replicated_to_rgb():
    gray = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4, mode="L")
    image = load_image(_png_bytes(gray))
    array = np.asarray(image)
    assert image.mode == "RGB" and np.array_equal(array[..., 0], np.asarray(gray))
    assert np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 1], array[..., 2])


def test_palette_images():
    rgb = random_image(16, 16, seed=3)
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image = load_image(_png_bytes(palette))
    assert image.mode == "RGB" and np.array_equal(np.asarray(image), np.asarray(palette.convert("RGB")))


def test_palette_with_transparency_is_composited_on_white():
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((1, 1), 1)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", transparency=0)  # index 0 (red) is fully transparent
    array = np.asarray(load_image(buffer.getvalue()))
    assert tuple(array[0, 0]) == (255, 255, 255)
    assert tuple(array[1, 1]) == (0, 0, 255)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_white(mode):
    if mode == "RGBA":
        pixels = np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [255, 0, 0, 128]]], dtype=np.uint8)
        expected = [(255, 255, 255), (255, 0, 0), (255, 127, 127)]
    else:
        pixels = np.array([[[0, 0], [0, 255], [0, 128]]], dtype=np.uint8)
        expected = [(255, 255, 255), (0, 0, 0), (127, 127, 127)]
    image = load_image(_png_bytes(Image.fromarray(pixels, mode=mode)))
    got = [tuple(int(v) for v in p) for p in np.asarray(image)[0]]
    assert got[:2] == expected[:2]
    assert all(abs(a - b) <= 1 for a, b in zip(got[2], expected[2], strict=True))


def test_16_bit_png_is_scaled_to_8_bits():
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    image16 = Image.fromarray(values)
    assert image16.mode.startswith("I;16")
    array = np.asarray(load_image(_png_bytes(image16)))
    assert array[0, :, 0].tolist() == [0, 1, 128, 255]
    assert image_to_tensor(load_image(_png_bytes(image16))).shape == (1, 3, 1, 4)


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # red in CMYK
    buffer = io.BytesIO()
    cmyk.save(buffer, format="JPEG", quality=95)
    image = load_image(buffer.getvalue())
    assert image.mode == "RGB" and image.size == (16, 16)
    r, g, b = np.asarray(image)[8, 8].tolist()
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize(("orientation", "top_colour"), [(6, "left"), (8, "right"), (3, None)])
def test_exif_orientation_is_honoured(orientation, top_colour):
    stored = np.zeros((40, 80, 3), dtype=np.uint8)
    stored[:, :40] = (255, 0, 0)  # left half red
    stored[:, 40:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, format="JPEG", quality=95, exif=exif)
    image = load_image(buffer.getvalue())
    array = np.asarray(image).astype(int)
    if orientation == 3:  # 180°: size kept, red ends up on the right
        assert image.size == (80, 40)
        assert array[20, 70, 0] > 200 and array[20, 10, 2] > 200
        return
    assert image.size == (40, 80)  # 90° rotations swap width and height
    top, bottom = array[10, 20], array[70, 20]
    red, blue = (top, bottom) if top_colour == "left" else (bottom, top)
    assert red[0] > 200 and red[2] < 60 and blue[2] > 200 and blue[0] < 60


def test_arrays_follow_the_same_policy():
    assert load_image(np.zeros((4, 5), dtype=np.uint16)).size == (5, 4)
    assert np.asarray(load_image(np.ones((2, 2, 3), dtype=np.float32)))[0, 0].tolist() == [255] * 3
    with pytest.raises(ImageInputError):
        load_image(np.zeros((2, 2, 2), dtype=np.uint8))
    with pytest.raises(ImageInputError):
        load_image(np.zeros((0, 3), dtype=np.uint8))
