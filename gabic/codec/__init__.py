"""The codec: image in, bytes out, image back.

- :mod:`~gabic.codec.container`: the container format (:class:`Header`, :func:`read_header`),
  what identifies a model in it (:func:`model_identity`, :func:`model_fingerprint`) and the
  stream-length limits that keep crafted bytes from crashing the decoder;
- :mod:`~gabic.codec.coding`: :func:`compress` / :func:`decompress` with CompressAI's rANS coder,
  their tensor-level forms, the 64-pixel padding and :func:`with_k`;
- :mod:`~gabic.codec.images`: the policy for what counts as an input image.

Imports only :mod:`gabic.models` below it (and :mod:`gabic.zoo`, lazily, to decode a container
without its model).
"""

from .coding import (
    DEFAULT_PAD,
    PAD_MODES,
    compress,
    compress_tensor,
    crop_image,
    decompress,
    decompress_tensor,
    encode_tensor,
    exact_kernels,
    pad_image,
    with_k,
)
from .container import (
    FORMAT_VERSION,
    MAGIC,
    MAX_CODEC_PIXELS,
    MAX_STREAM_BYTES_PER_SYMBOL,
    PAD_MULTIPLE,
    STREAM_SLACK,
    VARIABLE_RATE_VERSION,
    BitstreamError,
    Header,
    check_model,
    coded_quality,
    format_quality,
    model_fingerprint,
    model_identity,
    read_header,
)
from .images import ImageInputError, image_to_tensor, list_images, load_image, tensor_to_image

__all__ = [
    "DEFAULT_PAD",
    "PAD_MODES",
    "VARIABLE_RATE_VERSION",
    "coded_quality",
    "format_quality",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_CODEC_PIXELS",
    "MAX_STREAM_BYTES_PER_SYMBOL",
    "PAD_MULTIPLE",
    "STREAM_SLACK",
    "BitstreamError",
    "Header",
    "ImageInputError",
    "check_model",
    "compress",
    "compress_tensor",
    "crop_image",
    "decompress",
    "decompress_tensor",
    "encode_tensor",
    "exact_kernels",
    "image_to_tensor",
    "list_images",
    "load_image",
    "model_fingerprint",
    "model_identity",
    "pad_image",
    "read_header",
    "tensor_to_image",
    "with_k",
]
