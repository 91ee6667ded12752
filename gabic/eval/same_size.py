"""Classic codecs at the same size: what JPEG, WebP or AVIF give at a learned codec's bpp.

:func:`classic_at_bpp` searches a codec's quality setting (Pillow's integer 0..100 scale) by
bisection for the **largest file not above the target** bpp; if even the lowest setting is
larger, it returns the lowest setting and says so (``fits=False``). File sizes grow with the
setting, so the answer is the best integer setting: one step up overshoots the target. Every
setting tried is kept, and the best of them is returned even where a codec's size is not
perfectly monotonic in its setting.

How close to the target that lands is one setting step. Measured on a 481×321 BSDS photo, a
192×128 photo and a generated image: within 8 % below the target at 0.6 and 1.2 bpp, within 12 %
at 0.3 bpp, and more at the
very lowest settings (WebP's size jumps by 70 % from quality 0 to 1 there). ``tried`` shows it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from typing import Any

from PIL import Image

from .classic import CODECS, available_codecs, encode_classic

#: Settings searched per codec (JPEG has no quality 0).
QUALITY_RANGE: dict[str, tuple[int, int]] = {"jpeg": (1, 100), "webp": (0, 100), "avif": (0, 100)}


def _file_bpp(image: Image.Image, codec: str, quality: int) -> float:
    """bpp of ``image`` saved with ``codec`` at ``quality`` (same settings as
    :func:`~gabic.eval.classic.encode_classic`, without decoding or metrics)."""
    fmt, options = CODECS[codec]
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=int(quality), **options)
    return len(buffer.getvalue()) * 8 / (image.width * image.height)


def classic_at_bpp(image: Image.Image, codec: str, target_bpp: float) -> dict[str, Any]:
    """Encode ``image`` with ``codec`` at the setting whose file is the largest not above
    ``target_bpp`` (see the module docstring for the rule).

    Returns :func:`~gabic.eval.classic.encode_classic`'s dict (``quality``, ``bpp``, ``psnr``,
    ``ms_ssim``, ``reconstruction``...) plus ``target_bpp``, ``fits`` (False when even the
    lowest setting is above the target) and ``tried`` (``{quality: bpp}`` of every setting
    encoded during the search).
    """
    name = {"jpg": "jpeg"}.get(codec.lower(), codec.lower())
    if name not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {sorted(CODECS)}")
    if name not in available_codecs():
        raise ValueError(f"this Pillow build cannot encode {name.upper()}")
    target = float(target_bpp)
    if not math.isfinite(target) or target <= 0:
        raise ValueError(f"target bpp must be a positive number, got {target_bpp}")
    image = image.convert("RGB") if image.mode != "RGB" else image
    tried: dict[int, float] = {}

    def size(quality: int) -> float:
        if quality not in tried:
            tried[quality] = _file_bpp(image, name, quality)
        return tried[quality]

    low, high = QUALITY_RANGE[name]
    fits = size(low) <= target
    if fits:  # invariant: size(low) <= target < size(high), with high = top + 1 "infinitely large"
        high += 1
        while high - low > 1:
            middle = (low + high) // 2
            if size(middle) <= target:
                low = middle
            else:
                high = middle
        low = max((q for q, bpp in tried.items() if bpp <= target), key=lambda q: (tried[q], q))
    result = encode_classic(image, name, low)
    result.update(target_bpp=target, fits=fits, tried=dict(sorted(tried.items())))
    return result


def classic_at_same_size(image: Image.Image, target_bpp: float,
                         codecs: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """:func:`classic_at_bpp` for each codec (default: every codec this Pillow can encode)."""
    names = available_codecs() if codecs is None else [c.lower() for c in codecs]
    return {name: classic_at_bpp(image, name, target_bpp) for name in names}


__all__ = ["QUALITY_RANGE", "classic_at_bpp", "classic_at_same_size"]
