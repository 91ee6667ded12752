"""The codec: image in, bytes out, image back.

- :mod:`~gabic.codec.container`: the container format (:class:`Header`, :func:`read_header`),
  what identifies a model in it (:func:`model_identity`, :func:`model_fingerprint`) and the
  stream-length limits that keep crafted bytes from crashing the decoder;
- :mod:`~gabic.codec.coding`: :func:`compress` / :func:`decompress` with CompressAI's rANS coder,
  their tensor-level forms, :func:`forward_reconstruction` (what the decoder must give), :func:`encode_and_reconstruct`
  (the container and its decoded image in one pass),
  :func:`with_k` and :func:`with_quality`;
- :mod:`~gabic.codec.search`: encoder search (``effort=``): the latents of one image refined on
  its own rate-distortion loss before they are coded (:func:`search_latents`); same decoder,
  same container;
- :mod:`~gabic.codec.layout`: the padding to a multiple of 64, where the image sits in it and
  which latent cells the y stream carries (:func:`coded_cells`);
- :mod:`~gabic.codec.images`: the policy for what counts as an input image.

Imports only :mod:`gabic.models` below it (and :mod:`gabic.zoo`, lazily, to decode a container
without its model).
"""

from .coding import (
    compress,
    compress_tensor,
    decompress,
    decompress_tensor,
    encode_and_reconstruct,
    encode_tensor,
    exact_kernels,
    forward_reconstruction,
    with_k,
    with_quality,
)
from .container import (
    COMPACT_VERSIONS,
    FORMAT_VERSION,
    KNOWN_VERSIONS,
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
from .layout import (
    CODED_RING,
    DEFAULT_LAYOUT,
    DEFAULT_PAD,
    LATENT_STRIDE,
    LAYOUTS,
    PAD_MODES,
    coded_cells,
    crop_image,
    pad_image,
    padding,
    written_layout,
)
from .search import MAX_EFFORT, search_latents

__all__ = [
    "MAX_EFFORT",
    "search_latents",
    "DEFAULT_PAD",
    "KNOWN_VERSIONS",
    "LATENT_STRIDE",
    "PAD_MODES",
    "COMPACT_VERSIONS",
    "CODED_RING",
    "DEFAULT_LAYOUT",
    "LAYOUTS",
    "forward_reconstruction",
    "padding",
    "written_layout",
    "VARIABLE_RATE_VERSION",
    "coded_cells",
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
    "encode_and_reconstruct",
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
    "with_quality",
]
