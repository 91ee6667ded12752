"""Equal-rate comparison of two codecs on one photo.

The paper's Fig. 5 compares GABIC and Zou2022 at the same λ, where their rates differ a
little. With variable-rate models the rates can be matched instead: :func:`equal_rate` codes
the photo with the reference model at its quality, then searches the other model's continuous
quality (bisection on the real bitstream size) for the same bits per pixel, and returns both
analyses: PSNR, MS-SSIM and bit maps at one rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .. import codec
from ..codec.images import load_image
from ..inspect import Analysis, analyze, bit_difference
from ..models import ChannelwiseAttentionCodec

#: ``quality -> model``: builds a variable-rate model at a quality (e.g. ``lambda q: zoo.load(name, q)``).
ModelAtQuality = Callable[[float], ChannelwiseAttentionCodec]


@dataclass(frozen=True)
class RateSearch:
    """The quality found for a target rate and the steps that found it.

    Attributes:
        quality: the quality (hundredths) whose real bpp is closest to ``target_bpp``.
        bpp: its real bits per pixel.
        target_bpp: the rate looked for.
        steps: ``(quality, bpp)`` of every coding the search made, in order.
    """

    quality: float
    bpp: float
    target_bpp: float
    steps: list[tuple[float, float]] = field(default_factory=list)

    @property
    def relative_error(self) -> float:
        """``(bpp - target) / target``."""
        return (self.bpp - self.target_bpp) / self.target_bpp


def real_bpp(model: ChannelwiseAttentionCodec, image: Image.Image) -> float:
    """Bits per pixel of ``image``'s container (real rANS bitstream, header included)."""
    return len(codec.compress(model, image)) * 8 / (image.width * image.height)


def quality_for_bpp(model_at: ModelAtQuality, image: object, target_bpp: float, low: float = 1.0,
                    high: float = 4.0) -> RateSearch:  # fmt: skip
    """The quality in ``[low, high]`` (hundredths, as containers record it) whose real bpp on
    ``image`` is closest to ``target_bpp``, by bisection (the rate rises with the quality).

    A target below the rate at ``low`` or above the rate at ``high`` gives that end. At most
    ``log2((high - low) * 100) + 2`` codings (11 for 1..4).
    """
    photo = load_image(image)
    steps: list[tuple[float, float]] = []

    def measure(quality: float) -> float:
        bpp = real_bpp(model_at(quality), photo)
        steps.append((quality, bpp))
        return bpp

    lo, hi = round(low * 100), round(high * 100)  # in hundredths
    lo_bpp, hi_bpp = measure(lo / 100), measure(hi / 100)
    if target_bpp <= lo_bpp:
        return RateSearch(lo / 100, lo_bpp, target_bpp, steps)
    if target_bpp >= hi_bpp:
        return RateSearch(hi / 100, hi_bpp, target_bpp, steps)
    while hi - lo > 1:  # invariant: bpp(lo) < target < bpp(hi)
        mid = (lo + hi) // 2
        mid_bpp = measure(mid / 100)
        if mid_bpp == target_bpp:
            return RateSearch(mid / 100, mid_bpp, target_bpp, steps)
        if mid_bpp < target_bpp:
            lo, lo_bpp = mid, mid_bpp
        else:
            hi, hi_bpp = mid, mid_bpp
    if abs(lo_bpp - target_bpp) <= abs(hi_bpp - target_bpp):
        return RateSearch(lo / 100, lo_bpp, target_bpp, steps)
    return RateSearch(hi / 100, hi_bpp, target_bpp, steps)


@dataclass(frozen=True)
class EqualRate:
    """Two models on one photo at (nearly) the same real rate.

    Attributes:
        reference: the reference model's analysis at the quality asked for.
        matched: the other model's analysis at the quality of ``search``.
        search: how the matched quality was found.
    """

    reference: Analysis
    matched: Analysis
    search: RateSearch

    @property
    def psnr_difference(self) -> float:
        """PSNR of ``matched`` minus that of ``reference`` (dB) at the common rate."""
        return self.matched.psnr - self.reference.psnr

    @property
    def bpp_difference(self) -> float:
        """Real bpp of ``matched`` minus that of ``reference`` (what is left of the rate gap)."""
        return self.matched.bpp - self.reference.bpp

    def bit_difference(self) -> np.ndarray:
        """``(H, W)`` bits per pixel of ``reference`` minus ``matched`` (paper Fig. 5 colours:
        positive where the reference spends more)."""
        return bit_difference(self.reference, self.matched)


def equal_rate(reference_at: ModelAtQuality, matched_at: ModelAtQuality, image: object,
               quality: float, inspect_attention: bool = False) -> EqualRate:  # fmt: skip
    """Code ``image`` with the reference model at ``quality`` and the other model at the quality
    that gives the same real bpp (:func:`quality_for_bpp`); analyse both (:func:`~gabic.inspect.analyze`).

    Example: ``equal_rate(lambda q: zoo.load("gabic-small-vr", q), lambda q: zoo.load("zou2022-small-vr", q),
    photo, quality=3)``.
    """
    photo = load_image(image)
    reference = analyze(reference_at(quality), photo, inspect_attention=inspect_attention)
    search = quality_for_bpp(matched_at, photo, reference.bpp)
    matched = analyze(matched_at(search.quality), photo, inspect_attention=inspect_attention)
    return EqualRate(reference, matched, search)
