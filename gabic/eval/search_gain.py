"""What encoder search gains on one photo: the same model and quality coded without and with
``effort`` steps of search (:mod:`gabic.codec.search`), real containers both.

.. code-block:: none

    photo ─┬─ encode (effort 0) ──────► container ─► bpp, PSNR, MS-SSIM, picture   (plain)
           └─ encode (effort N) ──────► container ─► bpp, PSNR, MS-SSIM, picture   (searched)

Both pictures are the ones the decoder gives for each container
(:func:`~gabic.codec.encode_and_reconstruct`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from .. import codec
from ..codec.images import image_to_tensor, tensor_to_image
from ..codec.search import MAX_EFFORT
from ..metrics import msssim, psnr
from ..models import ChannelwiseAttentionCodec


@dataclass(frozen=True)
class Coding:
    """One photo coded once: ``effort`` steps of search, the container's size in ``bytes`` and
    ``bpp``, the decoded picture's ``psnr`` (dB) and ``ms_ssim`` (None below 161 px), the encoder's
    wall time in ``seconds`` and the decoded ``reconstruction``."""

    effort: int
    bytes: int
    bpp: float
    psnr: float
    ms_ssim: float | None
    seconds: float
    reconstruction: Image.Image


@dataclass(frozen=True)
class SearchGain:
    """The photo coded by one model at one quality without (``plain``) and with (``searched``)
    encoder search."""

    plain: Coding
    searched: Coding

    @property
    def bits_change(self) -> float:
        """Relative change of the container's size (−0.05: 5 % fewer bits)."""
        return self.searched.bytes / self.plain.bytes - 1

    @property
    def psnr_change(self) -> float:
        """PSNR of the searched container minus the plain one's, in dB."""
        return self.searched.psnr - self.plain.psnr


def _code(model: ChannelwiseAttentionCodec, x: torch.Tensor, effort: int,
          on_step: Callable[[int], None] | None) -> Coding:  # fmt: skip
    start = time.perf_counter()
    data, _, x_hat = codec.encode_and_reconstruct(model, x, effort=effort, on_step=on_step)
    seconds = time.perf_counter() - start
    x_hat = x_hat.cpu()
    height, width = x.shape[-2:]
    structural = msssim(x, x_hat)
    return Coding(effort=effort, bytes=len(data), bpp=len(data) * 8 / (height * width), psnr=psnr(x, x_hat),
                  ms_ssim=structural if math.isfinite(structural) else None, seconds=seconds, reconstruction=tensor_to_image(x_hat))  # fmt: skip


def search_gain(model: ChannelwiseAttentionCodec, image: Image.Image, effort: int,
                on_step: Callable[[int], None] | None = None) -> SearchGain:  # fmt: skip
    """``image`` (RGB) coded by ``model`` (at its quality; GABIC at its ``k``) with effort 0 and
    ``effort`` ≥ 1 steps of encoder search, in the default layout. ``on_step(n)`` is called after
    each search step. ``ValueError`` for an effort outside ``1..MAX_EFFORT``."""
    if not 1 <= int(effort) <= MAX_EFFORT:
        raise ValueError(f"effort must be a number of steps in 1..{MAX_EFFORT}, got {effort}")
    x = image_to_tensor(image)
    plain = _code(model, x, 0, None)
    searched = _code(model, x, int(effort), on_step)
    return SearchGain(plain=plain, searched=searched)
