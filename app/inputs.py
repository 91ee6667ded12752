"""The images the app works on: the library's input policy plus a downscale for interactive use,
a content key for the cache, notes saying what was converted, and the bundled sample photos."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from gabic.codec.images import ImageInputError, load_image

#: Longest side, in pixels, of the images the explorer works on; larger inputs are
#: downscaled (Lanczos) so an analysis stays interactive on a CPU.
DEFAULT_MAX_SIDE = 512
#: Sample photos bundled with scikit-image (no download needed).
SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")
#: Largest file accepted from a visitor, in bytes (the browser's upload limit and the API's):
#: a larger file is refused unread with "too large: … MB, the limit is 25 MB".
MAX_UPLOAD_BYTES = 25 * 2**20


@dataclass
class PreparedImage:
    """An input image after the input policy.

    Attributes:
        image: 8-bit RGB PIL image the models see.
        key: content hash of ``image`` (cache key; same pixels, same key).
        original_size: ``(width, height)`` as read, after EXIF rotation.
        notes: human-readable conversions (grayscale, transparency, 16-bit, EXIF, resize).
    """

    image: Image.Image
    key: str
    original_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def resized(self) -> bool:
        return self.image.size != self.original_size

    def describe(self) -> str:
        width, height = self.size
        text = f"{width}×{height} px"
        if self.resized:
            text += f" (downscaled from {self.original_size[0]}×{self.original_size[1]})"
        return text


def image_key(image: Image.Image) -> str:
    """16 hex digits of SHA-256 over the size and RGB pixels of ``image``."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()[:16]


def _conversion_notes(source: object) -> list[str]:
    """What :func:`load_image` will convert in ``source`` (mode, EXIF rotation), as notes."""
    try:
        if isinstance(source, Image.Image):
            opened = source
        elif isinstance(source, (bytes, bytearray)):
            opened = Image.open(io.BytesIO(source))
        elif isinstance(source, (str, Path)):
            opened = Image.open(source)
        else:
            return []
        mode = opened.mode
        orientation = opened.getexif().get(0x0112, 1) if hasattr(opened, "getexif") else 1
    except Exception:  # load_image reports unreadable input with a proper message
        return []
    notes = []
    if orientation not in (None, 1):
        notes.append(f"rotated as its EXIF orientation ({orientation}) says")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in opened.info):
        notes.append("transparency composited on white")
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        notes.append(f"{mode} samples scaled to 8 bits")
    if mode in ("L", "1", "I;16", "I;16B", "I;16L", "I", "F", "LA"):
        notes.append("grayscale converted to RGB")
    elif mode not in ("RGB", "RGBA"):
        notes.append(f"{mode} converted to RGB")
    return notes


def prepare_image(source: object, max_side: int | None = DEFAULT_MAX_SIDE,
                  max_bytes: int | None = None) -> PreparedImage:  # fmt: skip
    """Read ``source`` (path, bytes, PIL image or array) under the project's input policy
    and downscale it so its longer side is at most ``max_side``; a file or bytes larger than
    ``max_bytes`` are refused unread.

    Raises:
        gabic.images.ImageInputError: not an image, damaged, empty or too large; its ``reason``
            names no file (what the page shows).
    """
    full = load_image(source, max_bytes=max_bytes)
    notes = _conversion_notes(source)
    image = load_image(full, max_side=max_side) if max_side else full
    if image.size != full.size:
        notes.append(f"downscaled to at most {max_side} px per side for interactive use")
    return PreparedImage(image=image, key=image_key(image), original_size=full.size, notes=notes)


def sample_image(name: str) -> Image.Image:
    """One of :data:`SAMPLES` from scikit-image as an RGB PIL image."""
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; choose from {SAMPLES}")
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


__all__ = ["DEFAULT_MAX_SIDE", "MAX_UPLOAD_BYTES", "SAMPLES", "ImageInputError", "PreparedImage", "image_key", "prepare_image",
           "sample_image"]  # fmt: skip
