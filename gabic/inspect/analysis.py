"""One image through one model: everything the app and the notebooks draw, from one pass.

:func:`analyze` compresses an image (real rANS bitstream), decodes it (or takes the decoder's
image from the encoder's own ``ŷ``, which is the same bit for bit), and
records on the way the likelihood of every latent element and, in each of the
four attention modules, the input the module was given: the kNN graph and attention weights
(GABIC) or the full window attention (Zou2022) of a module are computed from it the first time
they are read (:class:`~gabic.inspect.block_inputs.BlockInspections`), and are those
:func:`~gabic.inspect.record_attention` records during the pass. The model it is given is not
changed.

Bit maps are at latent resolution of the padded image; :func:`spread_bits` spreads them over
the original image's pixels (coordinates as in :mod:`gabic.inspect.blocks`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .. import codec
from ..codec.images import image_to_tensor, load_image, tensor_to_image
from ..metrics import msssim, psnr
from ..models import GABIC, ChannelwiseAttentionCodec
from .block_inputs import BlockInspections, record_block_inputs
from .blocks import BlockInspection


@dataclass
class Analysis:
    """One image through one model: reconstruction, rates, bit maps and attention.

    Bit maps: ``y_bits`` ``(h, w)`` and ``z_bits`` ``(h/4, w/4)`` are the
    exact ``-log2`` likelihoods summed over channels at latent resolution (of
    the padded image); ``bits_per_pixel_map`` (and its y/z parts) spread them
    over the original image's pixels; they sum to ``bits_estimated``.

    ``blocks``: ``{block name: BlockInspection}``, each computed the first time it is read
    (empty when the analysis ran with ``inspect_attention=False``).

    ``decode_ms`` is ``nan`` when the analysis took the reconstruction from the encoder
    (``decode=False``); ``encode_ms`` then also counts the synthesis transform.
    """

    model_id: str
    arch: str
    quality: int
    k: int | None
    trained_k: int | None
    width: int
    height: int
    original: Image.Image
    reconstruction: Image.Image
    data: bytes
    bpp: float
    bpp_estimated: float
    bits_estimated: float
    psnr: float
    ms_ssim: float
    encode_ms: float
    decode_ms: float
    y_bits: np.ndarray
    z_bits: np.ndarray
    y_bits_per_pixel_map: np.ndarray
    z_bits_per_pixel_map: np.ndarray
    blocks: Mapping[str, BlockInspection] = field(default_factory=dict)

    @property
    def bits_per_pixel_map(self) -> np.ndarray:
        """``(H, W)`` bits spent per image pixel (y and z); its mean is ``bpp_estimated``."""
        return self.y_bits_per_pixel_map + self.z_bits_per_pixel_map

    def metrics(self) -> dict[str, float]:
        return {"bpp": self.bpp, "bpp_estimated": self.bpp_estimated, "psnr": self.psnr,
                "ms_ssim": self.ms_ssim, "encode_ms": self.encode_ms, "decode_ms": self.decode_ms}  # fmt: skip


def spread_bits(bits: np.ndarray, stride: int, height: int, width: int, pad_top: int,
                pad_left: int) -> np.ndarray:  # fmt: skip
    """Spread per-cell bits ``(h, w)`` (cells of ``stride`` px on the padded image) evenly over
    the original image's ``(height, width)`` pixels. Cells wholly in the padding give
    their bits to the nearest cell inside the image, so the total is preserved."""
    rows = (np.arange(height) + pad_top) // stride
    cols = (np.arange(width) + pad_left) // stride
    first_r, last_r = rows[0], rows[-1]
    first_c, last_c = cols[0], cols[-1]
    folded = np.zeros((last_r - first_r + 1, last_c - first_c + 1), dtype=np.float64)
    r_idx = np.clip(np.arange(bits.shape[0]), first_r, last_r) - first_r
    c_idx = np.clip(np.arange(bits.shape[1]), first_c, last_c) - first_c
    np.add.at(folded, (r_idx[:, None], c_idx[None, :]), bits.astype(np.float64))
    counts_r = np.bincount(rows - first_r, minlength=folded.shape[0])
    counts_c = np.bincount(cols - first_c, minlength=folded.shape[1])
    per_pixel = folded / np.outer(counts_r, counts_c)
    return per_pixel[(rows - first_r)[:, None], (cols - first_c)[None, :]].astype(np.float32)


def analyze(model: ChannelwiseAttentionCodec, image: object, k: int | None = None,
            inspect_attention: bool = True, decode: bool = True) -> Analysis:  # fmt: skip
    """Compress and decompress ``image`` with ``model`` and record everything to draw.

    Args:
        model: an eval-mode codec (e.g. from :func:`gabic.zoo.load`); it is not changed.
        image: PIL image, path, bytes or array (see :func:`gabic.codec.load_image`).
        k: for GABIC, neighbours per node to use for this analysis (default:
            the model's current k); a copy of the model with that k runs
            (:func:`gabic.codec.with_k`). The container records it.
        inspect_attention: keep what the four modules were given, so that their graphs and
            attention can be read from ``blocks`` (each computed when first read).
        decode: decode the container to get the reconstruction (and ``decode_ms``); ``False``
            takes the same image from the encoder's own ``ŷ`` instead
            (:func:`gabic.codec.encode_and_reconstruct`: equal bit for bit, in less time) and
            leaves ``decode_ms`` ``nan``.

    Returns:
        :class:`Analysis`. ``bpp`` is from the real bitstream; ``bpp_estimated``
        and the bit maps from the likelihoods of the same pass.
    """
    original = load_image(image)
    x = image_to_tensor(original)
    height, width = x.shape[-2:]
    is_graph = isinstance(model, GABIC)
    if k is not None and not is_graph:
        raise ValueError("k applies to GABIC only")
    working = codec.with_k(model, k) if k is not None else model
    recording = record_block_inputs(working) if inspect_attention else contextlib.nullcontext({})
    with recording as inputs:
        start = time.perf_counter()
        if decode:
            data, likelihoods = codec.encode_tensor(working, x, with_likelihoods=True)
            encode_ms = (time.perf_counter() - start) * 1000
            start = time.perf_counter()
            x_hat = codec.decompress_tensor(data, working)
            decode_ms = (time.perf_counter() - start) * 1000
        else:
            data, likelihoods, x_hat = codec.encode_and_reconstruct(working, x, with_likelihoods=True)
            encode_ms, decode_ms = (time.perf_counter() - start) * 1000, math.nan
    pad = codec.padding(height, width)
    half = next(working.parameters()).device.type == "cpu"
    blocks = BlockInspections(dict(working.window_blocks()), inputs, pad, half) if inspect_attention else {}
    assert likelihoods is not None
    y_bits = (-torch.log2(likelihoods["y"][0])).sum(0).cpu().numpy()
    z_bits = (-torch.log2(likelihoods["z"][0])).sum(0).cpu().numpy()
    y_map = spread_bits(y_bits, 16, height, width, pad[2], pad[0])
    z_map = spread_bits(z_bits, 64, height, width, pad[2], pad[0])
    bits = float(y_bits.sum(dtype=np.float64) + z_bits.sum(dtype=np.float64))
    x = x.to(x_hat.device)
    model_id, quality = codec.model_identity(model)
    return Analysis(
        model_id=model_id, arch=model.arch, quality=quality,
        k=working.k if is_graph else None,
        trained_k=model.config.k if is_graph else None,
        width=width, height=height, original=original, reconstruction=tensor_to_image(x_hat),
        data=data, bpp=len(data) * 8 / (height * width),
        bpp_estimated=bits / (height * width), bits_estimated=bits,
        psnr=psnr(x, x_hat), ms_ssim=msssim(x, x_hat),
        encode_ms=encode_ms, decode_ms=decode_ms, y_bits=y_bits, z_bits=z_bits,
        y_bits_per_pixel_map=y_map, z_bits_per_pixel_map=z_map, blocks=blocks,
    )  # fmt: skip


def bit_difference(a: Analysis, b: Analysis) -> np.ndarray:
    """``(H, W)`` bits per pixel of ``a`` minus those of ``b`` (paper Fig. 5: red where
    ``a`` spends more). Both analyses must be of the same image."""
    if (a.width, a.height) != (b.width, b.height):
        raise ValueError("the two analyses are of images of different sizes")
    return a.bits_per_pixel_map - b.bits_per_pixel_map


__all__ = ["Analysis", "analyze", "bit_difference", "spread_bits"]
