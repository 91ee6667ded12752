"""Reading images under one documented input policy (library, CLI and app alike).

Policy:
- Anything Pillow cannot decode, empty or truncated files: :class:`ImageInputError`.
- EXIF orientation is applied (the picture is shown the way a viewer shows it).
- Grayscale (L, I;16, I, F), palette (P), CMYK, YCbCr, LAB... are converted to RGB.
  16-bit and float images are scaled to 8 bits (the codec works on 8-bit RGB).
- Transparency (RGBA, LA, PA, P with transparency) is composited on white.
- More than :data:`MAX_PIXELS` pixels is refused before decoding (decompression
  bomb guard); callers that want a preview can pass ``max_side`` to downscale.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

#: Largest image accepted, in pixels (about 8K x 5K). Larger files are refused unread.
MAX_PIXELS = 40_000_000
ImageLike = "str | os.PathLike | bytes | Image.Image | np.ndarray"


class ImageInputError(ValueError):
    """The input is not an image this project can read; the message says why."""


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
        raise ImageInputError(f"array of shape {array.shape} is not an image (H×W, H×W×3 or H×W×4)")
    if array.size == 0:
        raise ImageInputError("empty image array")
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif array.dtype.kind == "f":
        array = np.clip(np.nan_to_num(array) * (255.0 if array.max() <= 1.0 else 1.0), 0, 255)
        array = array.round().astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def load_image(source: object, max_side: int | None = None) -> Image.Image:
    """Read ``source`` (path, bytes, PIL image or array) as an 8-bit RGB PIL image.

    Args:
        source: a file path, raw file bytes, a :class:`PIL.Image.Image` or an
            ``H×W[×C]`` array (uint8, uint16 or float in [0, 1]).
        max_side: if given, downscale (Lanczos) so the longer side is at most this.

    Raises:
        ImageInputError: unreadable, truncated, empty or too large input.
    """
    if isinstance(source, np.ndarray):
        image = _from_array(source)
    elif isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, (bytes, bytearray)):
            if not source:
                raise ImageInputError("empty file (0 bytes)")
            stream: object = io.BytesIO(source)
            name = "image bytes"
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise ImageInputError(f"{path}: no such file")
            if path.stat().st_size == 0:
                raise ImageInputError(f"{path}: empty file (0 bytes)")
            stream, name = path, str(path)
        else:
            raise ImageInputError(f"cannot read an image from {type(source).__name__}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(stream)  # type: ignore[arg-type]
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ImageInputError(
                        f"{name}: {width}×{height} is larger than the {MAX_PIXELS:,}-pixel limit"
                    )
                image.load()
        except ImageInputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageInputError(f"{name}: refused as a decompression bomb ({error})") from None
        except UnidentifiedImageError:
            raise ImageInputError(f"{name}: not an image Pillow can read") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageInputError(f"{name}: damaged or truncated image ({error})") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageInputError("image has no pixels")
    if width * height > MAX_PIXELS:
        raise ImageInputError(f"{width}×{height} is larger than the {MAX_PIXELS:,}-pixel limit")
    with contextlib.suppress(Exception):  # a broken EXIF block must not make a readable image unusable
        image = ImageOps.exif_transpose(image)
    image = _to_rgb(image)
    if max_side is not None and max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
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
