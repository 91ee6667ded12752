"""Classic codecs (JPEG, WebP, AVIF) through Pillow, measured like the learned codecs.

Every number comes from a real file: the image is saved into memory with
Pillow, ``bpp`` is the file's bytes * 8 / pixels, and PSNR / MS-SSIM are
computed on the decoded 8-bit image with :mod:`gabic.metrics`.

Encoder settings (fixed, so results are reproducible):

- JPEG: libjpeg(-turbo) through Pillow, 4:2:0 chroma subsampling (Pillow's
  default), ``optimize=True`` (optimal Huffman tables; no effect on quality).
- WebP: lossy libwebp, ``method=6`` (slowest, best compression).
- AVIF: Pillow's libavif, its default speed (6) and 4:2:0 subsampling.
"""

from __future__ import annotations

import io
import time
from typing import Any

from PIL import Image, features

from ..codec.images import image_to_tensor
from ..metrics import msssim, psnr

#: Codec name -> (Pillow format, extra save options).
CODECS: dict[str, tuple[str, dict[str, Any]]] = {
    "jpeg": ("JPEG", {"optimize": True, "subsampling": "4:2:0"}),
    "webp": ("WEBP", {"method": 6}),
    "avif": ("AVIF", {}),
}

#: Quality sweeps (Pillow's 0..100 scale) that cover about 0.1-2 bpp on Kodak
#: photographs (JPEG cannot go much below ~0.15 bpp on Kodak even at quality 1).
DEFAULT_QUALITIES: dict[str, list[int]] = {
    "jpeg": [1, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90],
    "webp": [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90],
    "avif": [5, 15, 25, 35, 45, 55, 65, 75, 82, 88],
}


def available_codecs() -> list[str]:
    """Codecs this Pillow build can encode (AVIF needs Pillow >= 11.2 built with libavif)."""
    found = []
    for name in CODECS:
        feature = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}[name]
        try:
            if features.check(feature):
                found.append(name)
        except ValueError:  # an unknown feature name in an older Pillow
            continue
    return found


def _check(codec: str, quality: int) -> str:
    codec = codec.lower()
    if codec == "jpg":
        codec = "jpeg"
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {sorted(CODECS)}")
    if codec not in available_codecs():
        raise ValueError(f"this Pillow build cannot encode {codec.upper()}")
    if not 0 <= int(quality) <= 100:
        raise ValueError(f"quality must be in 0..100, got {quality}")
    return codec


def encode_classic(image: Image.Image, codec: str, quality: int) -> dict[str, Any]:
    """Encode and decode ``image`` with a classic codec at ``quality`` (0..100).

    Returns a dict with ``codec``, ``quality``, ``bytes``, ``bpp`` (real file
    size), ``psnr``, ``ms_ssim`` (``nan`` below 161 px), ``encode_ms``,
    ``decode_ms`` and ``reconstruction`` (the decoded RGB PIL image).
    """
    codec = _check(codec, quality)
    image = image.convert("RGB") if image.mode != "RGB" else image
    fmt, options = CODECS[codec]
    buffer = io.BytesIO()
    start = time.perf_counter()
    image.save(buffer, format=fmt, quality=int(quality), **options)
    encode_ms = (time.perf_counter() - start) * 1000
    data = buffer.getvalue()
    start = time.perf_counter()
    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    decode_ms = (time.perf_counter() - start) * 1000
    reconstruction = decoded.convert("RGB")
    reference, distorted = image_to_tensor(image), image_to_tensor(reconstruction)
    return {
        "codec": codec,
        "quality": int(quality),
        "bytes": len(data),
        "bpp": len(data) * 8 / (image.width * image.height),
        "psnr": psnr(reference, distorted),
        "ms_ssim": msssim(reference, distorted),
        "encode_ms": encode_ms,
        "decode_ms": decode_ms,
        "reconstruction": reconstruction,
    }


def classic_rd_curve(
    image: Image.Image, codec: str, qualities: list[int] | None = None
) -> list[dict[str, Any]]:
    """:func:`encode_classic` at each quality (default :data:`DEFAULT_QUALITIES`), sorted by bpp."""
    name = _check(codec, 50)
    points = [encode_classic(image, name, q) for q in (qualities or DEFAULT_QUALITIES[name])]
    return sorted(points, key=lambda point: point["bpp"])
