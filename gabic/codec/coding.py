"""Image -> container -> image with CompressAI's rANS coder.

The image is padded to a multiple of 64 (where: :mod:`~gabic.codec.layout`), coded, decoded and
cropped back. The padding repeats the edge pixels by default
(``pad="edge"``): the padded border then costs almost no bits, where zeros (``pad="zero"``, the
reference codecs' rule, kept for paper-conformant evaluation) put an artificial edge into the
latent. The decoder only crops, so it does not need to know which rule the encoder used. Encoding and decoding never change the model
they are given: a container made with another ``k`` is decoded by a copy (:func:`with_k`).

By default the image sits in the top-left corner of the padded canvas and the latent cells more
than one cell beyond it are not coded (``layout="compact"``, container versions 3 and 4); on
BSDS500's 481×321 photos that leaves out 2 of 24 rows of cells. ``layout="reference"`` splits the
padding evenly and codes every cell, as the reference codecs do (versions 1 and 2).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator

import torch
from PIL import Image
from torch import Tensor, nn

from ..layers import GraphWindowBlock
from ..models import GABIC, ChannelwiseAttentionCodec, rounded_quality
from .container import (
    MAX_CODEC_PIXELS,
    BitstreamError,
    check_model,
    check_stream_length,
    coded_quality,
    current_k,
    format_quality,
    model_fingerprint,
    model_identity,
    pack_container,
    read_header,
    safe_stream,
)
from .images import image_to_tensor, load_image, tensor_to_image
from .layout import DEFAULT_LAYOUT, DEFAULT_PAD, coded_cells, crop_image, pad_image, padding, written_layout
from .search import search_latents


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


def _without_hooks(module: nn.Module) -> nn.Module:
    """Give ``module`` (a copy) empty hook tables of its own: hooks belong to whoever registered
    them on the original (e.g. :func:`gabic.inspect.record_attention`)."""
    for name, value in list(vars(module).items()):
        if "hooks" in name and isinstance(value, dict):
            module.__dict__[name] = type(value)()
    return module


def _own_children(module: nn.Module) -> nn.Module:
    """A new object for ``module`` that shares its parameters, buffers and children but has a
    child table (and hook tables) of its own, so a child can be swapped in the copy alone."""
    other = _without_hooks(copy.copy(module))
    other.__dict__["_modules"] = dict(module._modules)
    return other


def with_k(model: GABIC, k: int) -> GABIC:
    """``model`` itself if it uses ``k`` neighbours per node, else a GABIC that does.

    ``model`` is left as it is. The new model has its own copies of the four graph blocks (where
    ``k`` lives: a few kB each) and of the containers above them, and shares every other module,
    weight and buffer with ``model`` (a full copy took ~0.3 s on a 2-core CPU, this ~1 ms). It
    carries none of ``model``'s forward hooks on the parts it owns: hooks belong to whoever
    registered them (e.g. :func:`gabic.inspect.record_attention`).

    Raises:
        ValueError: ``model`` is not GABIC, or ``k`` is outside ``1..window²-1``.
    """
    if not isinstance(model, GABIC):
        raise ValueError("k applies to GABIC only")
    if model.k == int(k):
        return model
    other = _own_children(model)
    for path in (name for name, module in model.named_modules() if isinstance(module, GraphWindowBlock)):
        *parents, leaf = path.split(".")
        new_parent, old_parent = other, model
        for name in parents:
            old_child = old_parent._modules[name]
            if new_parent._modules[name] is old_child:  # not owned yet (paths share their start)
                new_parent._modules[name] = _own_children(old_child)
            new_parent, old_parent = new_parent._modules[name], old_child
        block = copy.deepcopy(old_parent._modules[leaf])
        for module in block.modules():
            _without_hooks(module)
        new_parent._modules[leaf] = block
    other.set_k(k)  # checks k (ValueError): the copy is dropped, model is untouched
    return other


def with_quality(model: ChannelwiseAttentionCodec, quality: float) -> ChannelwiseAttentionCodec:
    """A variable-rate ``model`` that codes at ``quality`` (rounded to hundredths, as containers
    record it): ``model`` itself if it does, else a codec object that shares every submodule,
    weight and buffer with ``model`` (nothing is copied) and differs only in ``quality``.

    ``model`` is left as it is. Building a model from its file takes ~0.25 s on a 2-core CPU, this
    a fraction of a millisecond; the two must not run at the same time in two threads (they are
    one model), and changing the weights of either changes both (as with :func:`with_k`, whose
    copy shares every weight outside the graph blocks).

    Raises:
        ValueError: ``model`` is a one-rate model, or ``quality`` is outside ``1..rate_levels``.
    """
    if not model.config.variable_rate:
        raise ValueError(f"{model.model_id} is a one-rate model: it codes at q{model.quality:g} only")
    quality = rounded_quality(quality, model.config.rate_levels)
    if model.quality == quality:
        return model
    other = copy.copy(model)  # a new object whose submodule, parameter and buffer tables are model's
    other.quality = quality
    return other


def _prepare(model: ChannelwiseAttentionCodec) -> torch.device:
    if model.training:
        model.eval()
    if model.gaussian_conditional.quantized_cdf.numel() == 0:
        model.update(force=True)
    return next(model.parameters()).device


def compress_tensor(model: ChannelwiseAttentionCodec, x: Tensor, pad: str = DEFAULT_PAD,
                    layout: str = DEFAULT_LAYOUT, effort: int = 0) -> bytes:  # fmt: skip
    """Encode one ``(1, 3, H, W)`` image in [0, 1] into a container (``pad``: see :func:`pad_image`,
    ``layout``: :mod:`~gabic.codec.layout`). A variable-rate model codes at its ``quality``
    (:func:`~gabic.codec.container.coded_quality`). ``effort``: steps of encoder search
    (:mod:`~gabic.codec.search`; 0, the default, codes the analysis as it is)."""
    return encode_tensor(model, x, pad=pad, layout=layout, effort=effort)[0]


def encode_tensor(
    model: ChannelwiseAttentionCodec,
    x: Tensor,
    with_likelihoods: bool = False,
    pad: str = DEFAULT_PAD,
    layout: str = DEFAULT_LAYOUT,
    effort: int = 0,
) -> tuple[bytes, dict[str, Tensor] | None]:
    """Like :func:`compress_tensor`; optionally also returns the y/z likelihoods of the
    padded image (as an eval-mode forward with the same ``coded_cells`` computes them; 1 for
    the elements left out), from the same pass."""
    data, likelihoods, _ = _encode(model, x, with_likelihoods, pad, layout, reconstruct=False, effort=effort)
    return data, likelihoods


def encode_and_reconstruct(model: ChannelwiseAttentionCodec, x: Tensor, with_likelihoods: bool = False,
                           pad: str = DEFAULT_PAD, layout: str = DEFAULT_LAYOUT, effort: int = 0,
                           on_step: Callable[[int], None] | None = None,
                           ) -> tuple[bytes, dict[str, Tensor] | None, Tensor]:  # fmt: skip
    """:func:`encode_tensor` and the image that decoding its container gives, ``(1, 3, H, W)`` in
    [0, 1], without decoding it: the decoder's last step (``g_s``) run on the encoder's own ``ŷ``,
    which the decoder rebuilds bit for bit from the streams. Equal to :func:`decompress_tensor`
    of the container exactly (tests check it); it saves the decoder's hyper-synthesis, its
    channel-wise slice loop and the rANS decoding (``python -m gabic bench --only app`` times both).
    ``on_step``: called after each step of the search (:func:`~gabic.codec.search.search_latents`)."""
    return _encode(model, x, with_likelihoods, pad, layout, reconstruct=True, effort=effort, on_step=on_step)


def _encode(model: ChannelwiseAttentionCodec, x: Tensor, with_likelihoods: bool, pad: str, layout: str,
            reconstruct: bool, effort: int = 0, on_step: Callable[[int], None] | None = None,
            ) -> tuple[bytes, dict[str, Tensor] | None, Tensor | None]:  # fmt: skip
    """The container of ``x``, the likelihoods (with ``with_likelihoods``) and, with ``reconstruct``,
    the decoder's image from the encoder's ``ŷ`` (at the quality the container records, cropped
    as :func:`decompress_tensor` crops); ``effort`` steps of :func:`~gabic.codec.search.search_latents`."""
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"expected a (1, 3, H, W) tensor, got {tuple(x.shape)}")
    height, width = x.shape[-2:]
    _check_size(width, height)
    device = _prepare(model)
    layout = written_layout(height, width, layout)
    padded, unpad = pad_image(x.to(device), pad, layout)
    model_id, quality = model_identity(model)
    coded = quality if model.config.variable_rate else None
    cells = coded_cells(height, width, layout, device)
    x_hat = None
    latents = None
    if effort:
        latents = search_latents(
            model, padded, x.to(device), unpad, coded, cells, int(effort), on_step=on_step
        )
    with torch.no_grad(), exact_kernels():
        out = model.compress(padded, with_likelihoods=with_likelihoods, quality=coded, coded_cells=cells,
                             latents=latents)  # fmt: skip
        if reconstruct:
            x_hat = crop_image(model.reconstruct(out["y_hat"], coded), unpad).clamp(0, 1)
    data = pack_container(model_id, quality, current_k(model), model_fingerprint(model), width, height,
                          z_stream=out["strings"][1][0], y_stream=out["strings"][0][0],
                          variable_rate=model.config.variable_rate, compact=layout == "compact")  # fmt: skip
    return data, out.get("likelihoods"), x_hat


def decompress_tensor(data: bytes, model: ChannelwiseAttentionCodec) -> Tensor:
    """Decode a container with ``model``; returns ``(1, 3, H, W)`` in [0, 1] (not rounded).

    GABIC decodes with the ``k`` the container records; if ``model`` uses another, a copy with
    that ``k`` decodes (:func:`with_k`), and ``model`` is not changed.
    """
    header = read_header(data)
    check_model(header, model)
    device = _prepare(model)
    z_h, z_w = header.latent_shape
    start = header.header_size
    z_stream = data[start : start + header.z_length]
    y_stream = data[start + header.z_length :]
    y_symbols = model.config.M * z_h * 4 * z_w * 4
    z_symbols = model.config.hyper_channels * z_h * z_w
    check_stream_length("z", len(z_stream), z_symbols)
    check_stream_length("y", len(y_stream), y_symbols)
    if header.variable_rate != model.config.variable_rate:
        kind = "a variable-rate" if header.variable_rate else "a one-rate"
        raise BitstreamError(
            f"this file was made by {kind} model; it cannot be decoded with {model.model_id}"
        )
    decoder = with_k(model, header.k) if isinstance(model, GABIC) else model
    quality = header.quality if header.variable_rate else None
    if quality is not None and not 1 <= quality <= model.config.rate_levels:
        raise BitstreamError(f"corrupted header (quality {quality:g})")
    if written_layout(header.height, header.width, header.layout) != header.layout:
        raise BitstreamError(f"corrupted header (version {header.version} for an image without padding)")
    cells = coded_cells(header.height, header.width, header.layout, device)
    with torch.no_grad(), exact_kernels():
        out = decoder.decompress(
            [[safe_stream(y_stream, y_symbols)], [safe_stream(z_stream, z_symbols)]],
            (z_h, z_w),
            quality=quality,
            coded_cells=cells,
        )
    unpad = tuple(-p for p in padding(header.height, header.width, header.layout))
    return crop_image(out["x_hat"], unpad).clamp(0, 1)


def forward_reconstruction(model: ChannelwiseAttentionCodec, x: Tensor, pad: str = DEFAULT_PAD,
                           layout: str = DEFAULT_LAYOUT) -> Tensor:  # fmt: skip
    """What decoding the container of ``x`` (``(1, 3, H, W)`` in [0, 1]) gives, computed by an
    eval-mode forward pass instead of the rANS coder: the same padding, layout, coded cells and
    quality. ``(1, 3, H, W)`` in [0, 1]; :func:`decompress_tensor` must reproduce it exactly."""
    height, width = x.shape[-2:]
    device = _prepare(model)
    padded, unpad = pad_image(x.to(device), pad, layout)
    quality = coded_quality(model) if model.config.variable_rate else None
    with torch.no_grad(), exact_kernels():
        out = model(padded, quality=quality, coded_cells=coded_cells(height, width, layout, device))
    return crop_image(out["x_hat"], unpad).clamp(0, 1)


def compress(model: ChannelwiseAttentionCodec, image: object, pad: str = DEFAULT_PAD,
             layout: str = DEFAULT_LAYOUT, effort: int = 0) -> bytes:  # fmt: skip
    """Compress ``image`` (PIL image, path, bytes or array; see :func:`gabic.codec.load_image`);
    ``pad`` is the padding rule (:func:`pad_image`), ``layout`` where the image sits in the padded
    canvas and which latent cells are coded (:mod:`~gabic.codec.layout`), ``effort`` the steps of
    encoder search (:mod:`~gabic.codec.search`: fewer bits for more encoder time; 0 = none)."""
    return compress_tensor(model, image_to_tensor(load_image(image)), pad, layout, effort)


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
                f"the container names model {header.model_id!r} {format_quality(header.quality)}, which is not a "
                f"shipped model; pass the model that made it ({error})"
            ) from None
    return tensor_to_image(decompress_tensor(data, model))
