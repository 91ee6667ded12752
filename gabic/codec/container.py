"""The container: a small self-describing header around the two rANS streams.

Layout (all integers big-endian)::

    offset size  field
    0      4     magic b"GABC"
    4      1     format version: 1 (one-rate model) or 2 (variable-rate model) in the reference
                 layout; 3 and 4: the same in the compact layout (see below)
    5      1     length L of the model id (1..64)
    6      L     model id, UTF-8 (e.g. "gabic-small"; "gabic" for unnamed weights)
    6+L    1     quality (0 = unknown)                 version 2: 2 bytes, quality × 100
    7+L    1     k used by the graph blocks (0 for Zou2022)        (all later offsets + 1)
    8+L    8     weight fingerprint (first 8 bytes of a SHA-256 over the state dict)
    16+L   4     width of the original image
    20+L   4     height of the original image
    24+L   4     length of the z stream
    28+L   4     length of the y stream
    32+L   4     CRC-32 of everything before it and of the payload
    36+L   ...   z stream, then y stream

A variable-rate model codes at a continuous quality; version 2 records it in hundredths, and
the encoder codes at exactly that recorded value (:func:`coded_quality`), so the decoder's gain
vectors are the encoder's bit for bit. One-rate models write version 1, whose bytes are those
of every earlier release.

Layouts (:mod:`gabic.codec.layout`): versions 1 and 2 split the padding to a multiple of 64 evenly
around the image and code every latent cell; versions 3 and 4 put the image in the top-left corner
and leave the latent cells more than one cell beyond it out of the y stream. Which cells those are
follows from the width and height. An image without padding is always written as version 1 or 2.

Also here: what identifies a model in a container (:func:`model_identity`,
:func:`model_fingerprint`, :func:`check_model`) and the limits that keep a crafted stream
from making the rANS decoder read out of bounds.
"""

from __future__ import annotations

import hashlib
import math
import struct
import threading
import weakref
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import torch

from ..models import GABIC, ChannelwiseAttentionCodec, rounded_quality

MAGIC = b"GABC"
#: Version written for one-rate models (and the only one before variable-rate models).
FORMAT_VERSION = 1
#: Version written for variable-rate models: the quality takes two bytes (hundredths).
VARIABLE_RATE_VERSION = 2
#: Versions 3 and 4: versions 1 and 2 in the compact layout.
COMPACT_VERSIONS = {FORMAT_VERSION: 3, VARIABLE_RATE_VERSION: 4}
#: Every version this reader knows.
KNOWN_VERSIONS = (1, 2, 3, 4)
#: The codec pads images to multiples of this many pixels (the latent ``z`` is at 1/64).
PAD_MULTIPLE = 64
#: Largest image the codec accepts (4K UHD); bigger inputs must be downscaled first.
MAX_CODEC_PIXELS = 3840 * 2160
_FIXED = struct.Struct(">BB8sIIIII")  # quality, k, fingerprint, width, height, len_z, len_y, crc
_FIXED_V2 = struct.Struct(">HB8sIIIII")  # quality × 100, then as version 1
#: State-dict entries left out of the fingerprint: the entropy coder's tables, derived from the weights.
_CODER_TABLES = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")


class BitstreamError(ValueError):
    """The bytes are not a valid container for this model; the message says why."""


@dataclass(frozen=True)
class Header:
    """What a container says about itself (``quality`` in hundredths' precision for version 2)."""

    model_id: str
    quality: float
    k: int
    fingerprint: bytes
    width: int
    height: int
    z_length: int
    y_length: int
    header_size: int
    version: int = FORMAT_VERSION

    @property
    def variable_rate(self) -> bool:
        """True when a variable-rate model made the container (versions 2 and 4)."""
        return self.version in (VARIABLE_RATE_VERSION, COMPACT_VERSIONS[VARIABLE_RATE_VERSION])

    @property
    def layout(self) -> str:
        """``"compact"`` (versions 3 and 4) or ``"reference"`` (1 and 2); see :mod:`gabic.codec.layout`."""
        return "compact" if self.version in COMPACT_VERSIONS.values() else "reference"

    @property
    def latent_shape(self) -> tuple[int, int]:
        """``(h, w)`` of z for the padded image."""
        padded_h = math.ceil(self.height / PAD_MULTIPLE) * PAD_MULTIPLE
        padded_w = math.ceil(self.width / PAD_MULTIPLE) * PAD_MULTIPLE
        return padded_h // 64, padded_w // 64


# ------------------------------------------------------------------ model identity
#: what a model's fingerprinted tensors looked like -> (weak references to those very tensors,
#: fingerprint), the most recently used last. Models that share their tensors (``codec.with_quality``
#: lends one model at every quality) share an entry.
_FINGERPRINTS: OrderedDict[tuple, tuple[list[weakref.ref], bytes]] = OrderedDict()
_FINGERPRINTS_KEPT = 32
_FINGERPRINTS_LOCK = threading.Lock()


def _signature(model: ChannelwiseAttentionCodec) -> tuple[tuple, list[tuple[str, torch.Tensor]]]:
    """What the fingerprinted tensors of ``model`` look like now (architecture, then name, address,
    version, shape, dtype and device of each), and those ``(name, tensor)`` in name order."""
    tensors = sorted(
        (name, tensor) for name, tensor in model.state_dict(keep_vars=True).items()
        if not name.endswith(_CODER_TABLES)
    )  # fmt: skip
    signature = (model.arch, *(
        (name, tensor.data_ptr(), tensor._version, tuple(tensor.shape), tensor.dtype, tensor.device)
        for name, tensor in tensors
    ))  # fmt: skip
    return signature, tensors


def model_fingerprint(model: ChannelwiseAttentionCodec) -> bytes:
    """8 bytes identifying the current weights: the start of a SHA-256 over the architecture name
    and every state-dict tensor in name order (as float32), the entropy coder's tables left out.

    The value is kept (nothing is stored on the model) for the very tensor objects it was computed
    from, and recomputed as soon as any of them is replaced or changed in place (PyTorch's version
    counter, e.g. an optimiser step, ``load_state_dict`` or an in-place op under
    ``torch.no_grad()``). Writes through ``tensor.data`` bypass the version counter and are not seen.
    """
    signature, tensors = _signature(model)
    with _FINGERPRINTS_LOCK:
        cached = _FINGERPRINTS.get(signature)
        # the same objects, not others that took their memory after they were freed
        if cached is not None and all(
            ref() is tensor for ref, (_, tensor) in zip(cached[0], tensors, strict=True)
        ):
            _FINGERPRINTS.move_to_end(signature)
            return cached[1]
    digest = hashlib.sha256(model.arch.encode())
    for name, tensor in tensors:
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    fingerprint = digest.digest()[:8]
    with _FINGERPRINTS_LOCK:
        _FINGERPRINTS[signature] = ([weakref.ref(tensor) for _, tensor in tensors], fingerprint)
        while len(_FINGERPRINTS) > _FINGERPRINTS_KEPT:
            _FINGERPRINTS.popitem(last=False)
    return fingerprint


def model_identity(model: ChannelwiseAttentionCodec) -> tuple[str, float]:
    """``(model id, quality)`` a container records for ``model`` (its ``model_id`` and ``quality``:
    an integer for a one-rate model, :func:`coded_quality` for a variable-rate one)."""
    if model.config.variable_rate:
        return model.model_id, coded_quality(model)
    return model.model_id, int(model.quality)


def coded_quality(model: ChannelwiseAttentionCodec) -> float:
    """The quality a variable-rate ``model`` codes at: its ``quality`` rounded to hundredths
    (what version 2 records). Raises ``ValueError`` outside ``1..rate_levels``."""
    return rounded_quality(model.quality, model.config.rate_levels)


def format_quality(quality: float) -> str:
    """``"q3"`` or ``"q2.5"``, as messages and labels show a quality."""
    return f"q{quality:g}"


def current_k(model: ChannelwiseAttentionCodec) -> int:
    """The ``k`` a container records: GABIC's current ``k``, 0 for Zou2022."""
    return model.k if isinstance(model, GABIC) else 0


def check_model(header: Header, model: ChannelwiseAttentionCodec) -> None:
    """Raise :class:`BitstreamError` if ``model`` did not make the container."""
    model_id, quality = model_identity(model)
    if header.fingerprint != model_fingerprint(model):
        made_by = f"{header.model_id}" + (f" {format_quality(header.quality)}" if header.quality else "")
        ours = f"{model_id}" + (f" {format_quality(quality)}" if quality else "")
        raise BitstreamError(
            f"this file was made by another model ({made_by}); it cannot be decoded with {ours}"
        )
    if isinstance(model, GABIC):
        largest = min(w * w for w in model.config.windows) - 1
        if not 1 <= header.k <= largest:
            raise BitstreamError(f"corrupted header (k={header.k})")


# ---------------------------------------------------------------- writing, reading
def pack_container(model_id: str, quality: float, k: int, fingerprint: bytes, width: int, height: int,
                   z_stream: bytes, y_stream: bytes, variable_rate: bool = False,
                   compact: bool = False) -> bytes:  # fmt: skip
    """The container bytes: header, checksum, then the z and y streams (version 2 when
    ``variable_rate``, with the quality in hundredths; 3 or 4 for the compact layout)."""
    name = model_id.encode()
    if not 1 <= len(name) <= 64:
        raise ValueError(f"model id {model_id!r} must be 1..64 bytes")
    version = VARIABLE_RATE_VERSION if variable_rate else FORMAT_VERSION
    if compact:
        version = COMPACT_VERSIONS[version]
    head = MAGIC + bytes([version, len(name)]) + name
    if variable_rate:
        fixed = struct.pack(">HB8sIIII", round(quality * 100), k, fingerprint, width, height,
                            len(z_stream), len(y_stream))  # fmt: skip
    else:
        fixed = struct.pack(">BB8sIIII", int(quality), k, fingerprint, width, height,
                            len(z_stream), len(y_stream))  # fmt: skip
    crc = zlib.crc32(head + fixed + z_stream + y_stream)
    return head + fixed + struct.pack(">I", crc) + z_stream + y_stream


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
    version = data[4]
    if version not in KNOWN_VERSIONS:
        raise BitstreamError(
            f"unsupported container version {version} (this reader knows "
            f"{', '.join(map(str, KNOWN_VERSIONS))})"
        )
    variable_rate = version in (VARIABLE_RATE_VERSION, COMPACT_VERSIONS[VARIABLE_RATE_VERSION])
    fixed_struct = _FIXED_V2 if variable_rate else _FIXED
    name_length = data[5]
    if not 1 <= name_length <= 64:
        raise BitstreamError(f"corrupted header (model id length {name_length})")
    header_size = 6 + name_length + fixed_struct.size
    if len(data) < header_size:
        raise BitstreamError(f"truncated container ({len(data)} bytes, header needs {header_size})")
    try:
        model_id = data[6 : 6 + name_length].decode("utf-8")
    except UnicodeDecodeError:
        raise BitstreamError("corrupted header (model id is not UTF-8)") from None
    quality, k, fingerprint, width, height, z_length, y_length, crc = fixed_struct.unpack_from(
        data, 6 + name_length
    )
    if variable_rate:
        quality = quality / 100
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
    return Header(model_id, quality, k, fingerprint, width, height, z_length, y_length, header_size, version)


# ------------------------------------------------------------------- stream limits
#: A non-escape symbol costs at most 16 bits (the coder's precision), so a valid stream is
#: shorter than this many bytes per coded symbol (+ :data:`STREAM_SLACK`); longer ones are refused.
MAX_STREAM_BYTES_PER_SYMBOL = 2
STREAM_SLACK = 1024


def check_stream_length(kind: str, length: int, symbols: int) -> None:
    """Raise :class:`BitstreamError` if a ``kind`` stream of ``length`` bytes is longer than any
    valid stream of ``symbols`` symbols."""
    limit = MAX_STREAM_BYTES_PER_SYMBOL * symbols + STREAM_SLACK
    if length > limit:
        raise BitstreamError(
            f"corrupted container ({kind} stream of {length:,} bytes is longer than any valid "
            f"stream for {symbols:,} symbols, at most {limit:,})"
        )


def safe_stream(stream: bytes, symbols: int) -> bytes:
    """Zero-pad a stream so CompressAI's rANS decoder (no bounds checks) can never read
    past the buffer, whatever the bytes are.

    Per decoded symbol the 64-bit rANS decoder reads at most one 32-bit word
    when it renormalises. Escape ("bypass") symbols read more: a run of
    all-ones nibbles adds up to 15 per nibble to the count of raw nibbles to
    read next, so ``L`` crafted bytes can make it read about ``15 * L`` bytes
    more (measured: a 100 kB stream of ``0xff`` crashed the process with the
    former ``4 * symbols`` padding). Zero padding stops the runs. Hence
    ``4 * symbols + 16 * L`` plus slack; :func:`check_stream_length` bounds
    ``L``. A valid stream never reaches the padding.
    """
    return stream + bytes(4 * symbols + 16 * len(stream) + 4096)
