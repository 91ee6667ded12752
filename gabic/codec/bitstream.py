"""Real bitstreams: image -> bytes -> image with CompressAI's rANS coder.

Container layout (all integers big-endian)::

    offset size  field
    0      4     magic b"GABC"
    4      1     format version (1)
    5      1     length L of the model id (1..64)
    6      L     model id, UTF-8 (e.g. "gabic-small"; "gabic" for unnamed weights)
    6+L    1     quality (0 = unknown)
    7+L    1     k used by the graph blocks (0 for Zou2022)
    8+L    8     weight fingerprint (first 8 bytes of a SHA-256 over the state dict)
    16+L   4     width of the original image
    20+L   4     height of the original image
    24+L   4     length of the z stream
    28+L   4     length of the y stream
    32+L   4     CRC-32 of everything before it and of the payload
    36+L   ...   z stream, then y stream

The image is padded to a multiple of 64 (CompressAI's ``compute_padding``,
split evenly between the two sides), coded, decoded and cropped back.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from compressai.ops import compute_padding
from PIL import Image
from torch import Tensor

from ..models import GABIC, ChannelwiseAttentionCodec
from .images import image_to_tensor, load_image, tensor_to_image

MAGIC = b"GABC"
FORMAT_VERSION = 1
PAD_MULTIPLE = 64
#: Largest image the codec accepts (4K UHD); bigger inputs must be downscaled first.
MAX_CODEC_PIXELS = 3840 * 2160
_FIXED = struct.Struct(">BB8sIIIII")  # quality, k, fingerprint, width, height, len_z, len_y, crc


class BitstreamError(ValueError):
    """The bytes are not a valid container for this model; the message says why."""


@dataclass(frozen=True)
class Header:
    """What a container says about itself."""

    model_id: str
    quality: int
    k: int
    fingerprint: bytes
    width: int
    height: int
    z_length: int
    y_length: int
    header_size: int

    @property
    def latent_shape(self) -> tuple[int, int]:
        """``(h, w)`` of z for the padded image."""
        padded_h = math.ceil(self.height / PAD_MULTIPLE) * PAD_MULTIPLE
        padded_w = math.ceil(self.width / PAD_MULTIPLE) * PAD_MULTIPLE
        return padded_h // 64, padded_w // 64


def model_fingerprint(model: ChannelwiseAttentionCodec) -> bytes:
    """8 bytes identifying the weights (cached on the model; recomputed if weights change id)."""
    cached = getattr(model, "_gabic_fingerprint", None)
    if cached is not None:
        return cached
    digest = hashlib.sha256(model.arch.encode())
    for name, tensor in sorted(model.state_dict().items()):
        if name.endswith(("_quantized_cdf", "_offset", "_cdf_length", "scale_table")):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    fingerprint = digest.digest()[:8]
    model._gabic_fingerprint = fingerprint  # type: ignore[attr-defined]
    return fingerprint


def model_identity(model: ChannelwiseAttentionCodec) -> tuple[str, int]:
    """``(model id, quality)`` recorded for ``model`` (set by :mod:`gabic.zoo`)."""
    return getattr(model, "model_id", model.arch), int(getattr(model, "quality", 0) or 0)


def _current_k(model: ChannelwiseAttentionCodec) -> int:
    return model.k if isinstance(model, GABIC) else 0


def pad_image(x: Tensor) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Zero-pad ``(B, 3, H, W)`` to multiples of 64, evenly; returns (padded, unpad)."""
    pad, unpad = compute_padding(x.shape[-2], x.shape[-1], min_div=PAD_MULTIPLE)
    return F.pad(x, pad, mode="constant", value=0.0), unpad


def crop_image(x: Tensor, unpad: tuple[int, int, int, int]) -> Tensor:
    return F.pad(x, unpad)


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ValueError("image has no pixels")
    if width * height > MAX_CODEC_PIXELS:
        raise ValueError(
            f"{width}×{height} is larger than the codec limit of {MAX_CODEC_PIXELS:,} pixels; "
            "downscale it first"
        )


@contextlib.contextmanager
def exact_kernels() -> Iterator[None]:
    """Run CUDA convolutions and matrix products deterministically and in full fp32 (no TF32).

    The decoder must recompute the encoder's means and scales bit for bit; cuDNN's autotuned or
    non-deterministic kernels (transposed convolutions accumulate with atomics) and TF32 break
    that. A no-op on the CPU.
    """
    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
             torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)  # fmt: skip
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
         torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) = saved  # fmt: skip


def _prepare(model: ChannelwiseAttentionCodec) -> torch.device:
    if model.training:
        model.eval()
    if model.gaussian_conditional.quantized_cdf.numel() == 0:
        model.update(force=True)
    return next(model.parameters()).device


def compress_tensor(model: ChannelwiseAttentionCodec, x: Tensor) -> bytes:
    """Encode one ``(1, 3, H, W)`` image in [0, 1] into a container."""
    return encode_tensor(model, x)[0]


def encode_tensor(
    model: ChannelwiseAttentionCodec, x: Tensor, with_likelihoods: bool = False
) -> tuple[bytes, dict[str, Tensor] | None]:
    """Like :func:`compress_tensor`; optionally also returns the y/z likelihoods of the
    padded image (as an eval-mode forward computes them), from the same pass."""
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"expected a (1, 3, H, W) tensor, got {tuple(x.shape)}")
    height, width = x.shape[-2:]
    _check_size(width, height)
    device = _prepare(model)
    padded, _ = pad_image(x.to(device))
    with torch.no_grad(), exact_kernels():
        out = model.compress(padded, with_likelihoods=with_likelihoods)
    z_stream = out["strings"][1][0]
    y_stream = out["strings"][0][0]
    model_id, quality = model_identity(model)
    name = model_id.encode()
    if not 1 <= len(name) <= 64:
        raise ValueError(f"model id {model_id!r} must be 1..64 bytes")
    head = MAGIC + bytes([FORMAT_VERSION, len(name)]) + name
    fixed = struct.pack(">BB8sIIII", quality, _current_k(model), model_fingerprint(model),
                        width, height, len(z_stream), len(y_stream))  # fmt: skip
    crc = zlib.crc32(head + fixed + z_stream + y_stream)
    data = head + fixed + struct.pack(">I", crc) + z_stream + y_stream
    return data, out.get("likelihoods")


def read_header(data: bytes) -> Header:
    """Parse and check a container's header and checksum (no decoding).

    Raises:
        BitstreamError: wrong magic or version, truncated, inconsistent sizes,
            or a checksum mismatch (corrupted file).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 6:
        raise BitstreamError(f"too short to be a GABIC container ({len(data)} bytes)")
    if data[:4] != MAGIC:
        raise BitstreamError("not a GABIC container (wrong magic bytes)")
    if data[4] != FORMAT_VERSION:
        raise BitstreamError(f"unsupported container version {data[4]} (this reader knows {FORMAT_VERSION})")
    name_length = data[5]
    if not 1 <= name_length <= 64:
        raise BitstreamError(f"corrupted header (model id length {name_length})")
    header_size = 6 + name_length + _FIXED.size
    if len(data) < header_size:
        raise BitstreamError(f"truncated container ({len(data)} bytes, header needs {header_size})")
    try:
        model_id = data[6 : 6 + name_length].decode("utf-8")
    except UnicodeDecodeError:
        raise BitstreamError("corrupted header (model id is not UTF-8)") from None
    quality, k, fingerprint, width, height, z_length, y_length, crc = _FIXED.unpack_from(
        data, 6 + name_length
    )
    if width < 1 or height < 1 or width * height > MAX_CODEC_PIXELS:
        raise BitstreamError(f"corrupted header (image size {width}×{height})")
    expected = header_size + z_length + y_length
    if len(data) < expected:
        raise BitstreamError(f"truncated container ({len(data)} of {expected} bytes)")
    if len(data) > expected:
        raise BitstreamError(f"{len(data) - expected} unexpected bytes after the container")
    body = data[: header_size - 4] + data[header_size:]
    if zlib.crc32(body) != crc:
        raise BitstreamError("corrupted container (checksum mismatch)")
    return Header(model_id, quality, k, fingerprint, width, height, z_length, y_length, header_size)


#: A non-escape symbol costs at most 16 bits (the coder's precision), so a valid stream is
#: shorter than this many bytes per coded symbol (+ :data:`STREAM_SLACK`); longer ones are refused.
MAX_STREAM_BYTES_PER_SYMBOL = 2
STREAM_SLACK = 1024


def _check_stream_length(kind: str, length: int, symbols: int) -> None:
    limit = MAX_STREAM_BYTES_PER_SYMBOL * symbols + STREAM_SLACK
    if length > limit:
        raise BitstreamError(
            f"corrupted container ({kind} stream of {length:,} bytes is longer than any valid "
            f"stream for {symbols:,} symbols, at most {limit:,})"
        )


def _safe_stream(stream: bytes, symbols: int) -> bytes:
    """Zero-pad a stream so CompressAI's rANS decoder (no bounds checks) can never read
    past the buffer, whatever the bytes are.

    Per decoded symbol the 64-bit rANS decoder reads at most one 32-bit word
    when it renormalises. Escape ("bypass") symbols read more: a run of
    all-ones nibbles adds up to 15 per nibble to the count of raw nibbles to
    read next, so ``L`` crafted bytes can make it read about ``15 * L`` bytes
    more (measured: a 100 kB stream of ``0xff`` crashed the process with the
    former ``4 * symbols`` padding). Zero padding stops the runs. Hence
    ``4 * symbols + 16 * L`` plus slack; :func:`_check_stream_length` bounds
    ``L``. A valid stream never reaches the padding.
    """
    return stream + bytes(4 * symbols + 16 * len(stream) + 4096)


def decompress_tensor(data: bytes, model: ChannelwiseAttentionCodec) -> Tensor:
    """Decode a container with ``model``; returns ``(1, 3, H, W)`` in [0, 1] (not rounded)."""
    header = read_header(data)
    check_model(header, model)
    _prepare(model)
    z_h, z_w = header.latent_shape
    start = header.header_size
    z_stream = data[start : start + header.z_length]
    y_stream = data[start + header.z_length :]
    y_symbols = model.config.M * z_h * 4 * z_w * 4
    z_symbols = model.config.hyper_channels * z_h * z_w
    _check_stream_length("z", len(z_stream), z_symbols)
    _check_stream_length("y", len(y_stream), y_symbols)
    previous_k = model.k if isinstance(model, GABIC) else None
    try:
        if isinstance(model, GABIC):
            model.set_k(header.k)
        with torch.no_grad(), exact_kernels():
            out = model.decompress(
                [[_safe_stream(y_stream, y_symbols)], [_safe_stream(z_stream, z_symbols)]], (z_h, z_w)
            )
    finally:
        if previous_k is not None:
            model.set_k(previous_k)
    _, unpad = compute_padding(header.height, header.width, min_div=PAD_MULTIPLE)
    return crop_image(out["x_hat"], unpad).clamp(0, 1)


def check_model(header: Header, model: ChannelwiseAttentionCodec) -> None:
    """Raise :class:`BitstreamError` if ``model`` did not make the container."""
    model_id, quality = model_identity(model)
    if header.fingerprint != model_fingerprint(model):
        made_by = f"{header.model_id}" + (f" q{header.quality}" if header.quality else "")
        ours = f"{model_id}" + (f" q{quality}" if quality else "")
        raise BitstreamError(
            f"this file was made by another model ({made_by}); it cannot be decoded with {ours}"
        )
    if isinstance(model, GABIC):
        largest = min(w * w for w in model.config.windows) - 1
        if not 1 <= header.k <= largest:
            raise BitstreamError(f"corrupted header (k={header.k})")


def compress(model: ChannelwiseAttentionCodec, image: object) -> bytes:
    """Compress ``image`` (PIL image, path, bytes or array; see :func:`gabic.images.load_image`)."""
    return compress_tensor(model, image_to_tensor(load_image(image)))


def decompress(data: bytes, model: ChannelwiseAttentionCodec | None = None) -> Image.Image:
    """Decode a container to an 8-bit RGB PIL image.

    Without ``model``, the shipped model named in the container is loaded
    (:func:`gabic.zoo.load`); containers of other weights need their model.
    """
    if model is None:
        header = read_header(data)
        from .. import zoo

        try:
            model = zoo.load(header.model_id, header.quality)
        except (KeyError, FileNotFoundError, ValueError) as error:
            raise BitstreamError(
                f"the container names model {header.model_id!r} q{header.quality}, which is not a "
                f"shipped model; pass the model that made it ({error})"
            ) from None
    return tensor_to_image(decompress_tensor(data, model))
