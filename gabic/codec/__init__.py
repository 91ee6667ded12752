"""The codec: image in, bytes out, image back.

The container format, :func:`compress` / :func:`decompress` with CompressAI's rANS coder
(and their tensor-level forms), and the policy for what counts as an input image
(:mod:`gabic.codec.images`). Imports only :mod:`gabic.models` below it.
"""

from .bitstream import (
    FORMAT_VERSION,
    MAGIC,
    MAX_CODEC_PIXELS,
    MAX_STREAM_BYTES_PER_SYMBOL,
    PAD_MULTIPLE,
    STREAM_SLACK,
    BitstreamError,
    Header,
    check_model,
    compress,
    compress_tensor,
    crop_image,
    decompress,
    decompress_tensor,
    encode_tensor,
    exact_kernels,
    model_fingerprint,
    model_identity,
    pad_image,
    read_header,
)
from .images import ImageInputError, image_to_tensor, list_images, load_image, tensor_to_image

__all__ = [
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
]
