"""Reading images under one documented input policy (library, CLI and app alike).

Policy:
- Anything Pillow cannot decode, empty or truncated files: :class:`ImageInputError`.
- EXIF orientation is applied (the picture is shown the way a viewer shows it).
- Grayscale (L, I;16, I, F), palette (P), CMYK, YCbCr, LAB... are converted to RGB.
  16-bit and float images are scaled to 8 bits (the codec works on 8-bit RGB).
- Transparency (RGBA, LA, PA, P with transparency) is composited on white.
- More than :data:`MAX_PIXELS` pixels is refused before decoding (decompression
  bomb guard); callers that want a preview can pass ``max_side`` to downscale.
- Callers that take files from strangers (the app) pass ``max_bytes``: a larger file is
  refused unread.

Every refusal is an :class:`ImageInputError` whose :attr:`~ImageInputError.reason` says what is
wrong and what to do in the user's terms and names no file, so an app can show it as it is;
``str(error)`` adds the file (when the input was one) and the decoder's detail, for the CLI and logs.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

#: Largest image accepted, in pixels (about 8K x 5K). Larger files are refused unread.
MAX_PIXELS = 40_000_000
ImageLike = "str | os.PathLike | bytes | Image.Image | np.ndarray"


class ImageInputError(ValueError):
    """The input is not an image this project can read; the message says why.

    Attributes:
        reason: what is wrong and what to do, naming no file or path (what a web page shows).
        source: the file the input came from, or ``None`` (bytes, arrays, images).
        detail: the decoder's own words, for logs and the CLI, or ``None``.

    ``str(error)`` is ``"{source}: {reason} ({detail})"`` without the parts that are ``None``.
    """

    def __init__(self, reason: str, source: str | os.PathLike | None = None, detail: str | None = None):
        self.reason = reason
        self.source = source
        self.detail = detail
        text = reason if source is None else f"{source}: {reason}"
        super().__init__(text if not detail else f"{text} ({detail})")

    def __reduce__(self) -> tuple:
        return type(self), (self.reason, self.source, self.detail)


#: What a refusal says (see :class:`ImageInputError`): what is wrong, then what to do.
NOT_AN_IMAGE = (
    "not an image: this file cannot be read as a picture; choose a PNG, JPEG, WebP, BMP or TIFF photo"
)
DAMAGED = "damaged or truncated image: the file is cut short or corrupt; use a complete copy of the photo"
EMPTY = "empty file (0 bytes): nothing arrived; choose the photo again"


def megapixels(pixels: int) -> str:
    """``pixels`` in megapixels, rounded up to a tenth (so above a limit never reads as the limit)."""
    return f"{math.ceil(pixels / 100_000) / 10:g}"


def too_many_pixels(pixels: int | None, limit: int = MAX_PIXELS) -> str:
    """The reason given for an image of ``pixels`` pixels (``None``: not known) above ``limit``."""
    count = f"{megapixels(pixels)} megapixels, " if pixels else ""
    return f"too many pixels: {count}the limit is {megapixels(limit)} megapixels; scale the photo down and try again"


def file_megabytes(size: int) -> str:
    """``size`` bytes in MB (2**20 bytes, as browsers and Gradio count them), to a tenth."""
    return f"{round(size / 2**20, 1):g}"


def too_large(size: int, limit: int) -> str:
    """The reason given for a file of ``size`` bytes above ``limit``."""
    return (
        f"too large: {file_megabytes(size)} MB, the limit is {file_megabytes(limit)} MB; "
        "save the photo smaller (for example as a JPEG) and try again"
    )


def _bomb_pixels(error: Exception) -> int | None:
    """The pixel count in Pillow's decompression-bomb message, if it says one."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    return int(found[1]) if found else None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        if image.mode == "F":
            top = 1.0 if array.max() <= 1.0 else 255.0
        array = np.clip(np.round(array / top * 255.0), 0, 255).astype(np.uint8)
        image = Image.fromarray(array, mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def _from_array(array: np.ndarray) -> Image.Image:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ImageInputError(f"not an image: an array of shape {array.shape} (expected H×W, H×W×3 or H×W×4)")
    if array.size == 0:
        raise ImageInputError("empty image array: it has no pixels")
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif array.dtype.kind == "f":
        array = np.clip(np.nan_to_num(array) * (255.0 if array.max() <= 1.0 else 1.0), 0, 255)
        array = array.round().astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def load_image(source: object, max_side: int | None = None, max_bytes: int | None = None) -> Image.Image:
    """Read ``source`` (path, bytes, PIL image or array) as an 8-bit RGB PIL image.

    Args:
        source: a file path, raw file bytes, a :class:`PIL.Image.Image` or an
            ``H×W[×C]`` array (uint8, uint16 or float in [0, 1]).
        max_side: if given, downscale (Lanczos) so the longer side is at most this.
        max_bytes: if given, refuse a file (or bytes) larger than this without reading it.

    Raises:
        ImageInputError: unreadable, truncated, empty or too large input
            (:attr:`ImageInputError.reason` names no file).
    """
    if isinstance(source, np.ndarray):
        image = _from_array(source)
    elif isinstance(source, Image.Image):
        image = source
    else:
        image = _open(source, max_bytes)
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageInputError("image has no pixels")
    if width * height > MAX_PIXELS:
        raise ImageInputError(too_many_pixels(width * height), detail=f"{width}×{height}")
    with contextlib.suppress(Exception):  # a broken EXIF block must not make a readable image unusable
        image = ImageOps.exif_transpose(image)
    image = _to_rgb(image)
    if max_side is not None and max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def _open(source: object, max_bytes: int | None) -> Image.Image:
    """Decode a file or bytes under the policy (size, pixel count, readability)."""
    if isinstance(source, (bytes, bytearray)):
        stream: object = io.BytesIO(source)
        size, where = len(source), None
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageInputError("no such file", path)
        stream, size, where = path, path.stat().st_size, path
    else:
        raise ImageInputError(f"cannot read an image from {type(source).__name__}")
    if size == 0:
        raise ImageInputError(EMPTY, where)
    if max_bytes is not None and size > max_bytes:
        raise ImageInputError(too_large(size, max_bytes), where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)  # type: ignore[arg-type]
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageInputError(too_many_pixels(width * height), where, f"{width}×{height}")
            image.load()
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        detail = "refused unread as a possible decompression bomb"
        raise ImageInputError(too_many_pixels(_bomb_pixels(error)), where, detail) from None
    except UnidentifiedImageError:
        raise ImageInputError(NOT_AN_IMAGE, where) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageInputError(DAMAGED, where, str(error)) from None
    return image


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> ``(1, 3, H, W)`` float tensor in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_image(x: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` tensor in [0, 1] -> 8-bit RGB PIL image (clamped, rounded)."""
    if x.dim() == 4:
        x = x[0]
    array = (x.detach().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, mode="RGB")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files (png, jpg, jpeg, bmp, ppm, tif, webp) of ``folder``, sorted by name."""
    suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    return sorted(p for p in root.iterdir() if p.suffix.lower() in suffixes and p.is_file())
