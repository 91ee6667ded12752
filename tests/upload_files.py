"""The uploads of the browser table in issue 20, generated: files a visitor may give the app, good
and bad, and the sentence the app answers each bad one with (shared by the handler, API and
browser tests of uploads)."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from helpers import random_image
from PIL import Image

#: What the page and the API say for each bad file (``ImageInputError.reason`` plus a full stop).
SENTENCES = {
    "random": "not an image: this file cannot be read as a picture; choose a PNG, JPEG, WebP, BMP or TIFF photo.",
    "bomb": "too many pixels: 900 megapixels, the limit is 40 megapixels; scale the photo down and try again.",
    "truncated": "damaged or truncated image: the file is cut short or corrupt; use a complete copy of the photo.",
    "large": "too large: 31.5 MB, the limit is 25 MB; save the photo smaller (for example as a JPEG) and try again.",
}  # fmt: skip
#: The page's note after a refused upload when an analysis was shown before it.
PREVIOUS_NOTE = "The results below are still those of the previous photo."


@dataclass(frozen=True)
class Uploads:
    """The table's files: four bad ones (keys of :data:`SENTENCES`) and two good photos."""

    bad: dict[str, Path]
    photo: Path  # small (160×120), quick to analyse
    big_photo: Path  # a 24-megapixel JPEG (6000×4000): analysed after a downscale


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid black 1-bit PNG of ``width × height`` (900 megapixels): about 0.1 MB that would
    decode to gigabytes. Written row block by row block (0.6 s; Pillow takes 2 s)."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    block = row * 1000
    parts = [compressor.compress(block) for _ in range(height // 1000)]
    parts.append(compressor.compress(row * (height % 1000)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def noise_png(side: int = 3318, seed: int = 4) -> bytes:
    """A stored (uncompressed) PNG of random noise: 3318 × 3318 is 31.5 MB (2**20 bytes each)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def photo_jpeg(width: int, height: int, seed: int = 3) -> bytes:
    """A smooth photo-like JPEG of ``width × height`` (a small random image, enlarged)."""
    buffer = io.BytesIO()
    random_image(120, 180, seed=seed).resize((width, height), Image.Resampling.BILINEAR).save(
        buffer, format="JPEG", quality=85
    )
    return buffer.getvalue()


def make_uploads(folder: Path) -> Uploads:
    """Write the table's files into ``folder`` (about 3 s)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "random.jpg": np.random.default_rng(7).bytes(20_000),
        "bomb.png": bomb_png(),
        "truncated.jpg": photo_jpeg(1200, 800)[:20_000],
        "large.png": noise_png(),
        "big-photo.jpg": photo_jpeg(6000, 4000),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    random_image(120, 160, seed=21).save(folder / "photo.png")
    bad = {
        Path(name).stem: folder / name for name in ("random.jpg", "bomb.png", "truncated.jpg", "large.png")
    }
    return Uploads(bad=bad, photo=folder / "photo.png", big_photo=folder / "big-photo.jpg")
