"""Progressive decoding: a reconstruction from the first ``s`` of ``S`` channel slices.

The channel-wise entropy model decodes slice after slice, and before slice ``i`` is read the
decoder already knows its predicted mean ``μ_i`` (from the hyperprior and the slices before it).
So a preview can be drawn from any prefix: slices ``0..s-1`` are the decoded ones, every later
slice takes its predicted mean in place of the decoded values (later ``μ`` are computed from
those stand-ins, as the decoder would), and the usual step follows, latent residual prediction
included. With ``s = S`` this *is* the decoder: the result equals
:func:`gabic.codec.decompress_tensor` bit for bit.

Bits are the entropy model's estimates (``−log₂ p``): ``z`` plus the first ``s`` slices. All
slices share one rANS stream, so the real file cannot be cut per slice; its total is within a
fraction of a percent of the estimate plus the container header.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor

from .. import codec
from ..codec.images import image_to_tensor, tensor_to_image
from ..metrics import psnr
from ..models import GABIC, ChannelwiseAttentionCodec, fill_uncoded_cells
from .entropy import EntropyView


@dataclass
class ProgressiveDecoding:
    """Reconstructions from the first ``steps[i]`` slices, with their quality and cost.

    Attributes:
        steps: the numbers of decoded slices ``s`` (0 = hyperprior only).
        reconstructions: RGB images of the original size, one per step.
        psnr: dB against the original, one per step.
        bits: estimated bits needed for each step (``z`` plus the first ``s`` slices).
        num_slices: ``S``; ``pixels``: pixels of the original image.
    """

    model_id: str
    arch: str
    quality: int
    num_slices: int
    pixels: int
    steps: list[int]
    reconstructions: list[Image.Image]
    psnr: list[float]
    bits: list[float]

    @property
    def bpp(self) -> list[float]:
        return [b / self.pixels for b in self.bits]


def cumulative_bits(view: EntropyView, slices: int) -> float:
    """Estimated bits to decode ``z`` and the first ``slices`` slices."""
    if not 0 <= slices <= view.num_slices:
        raise ValueError(f"slices must be in 0..{view.num_slices}, got {slices}")
    return view.z_bits_total + float(view.slice_bits[:slices].sum())


def decode_from_slices(model: ChannelwiseAttentionCodec, view: EntropyView, slices: int) -> Tensor:
    """``(1, 3, H, W)`` reconstruction in [0, 1] (cropped to the original size, not rounded)
    from the first ``slices`` slices of ``view``; later slices take their predicted means (and, as
    in the codec, the cells it leaves out the nearest coded cell's value).

    ``model`` must be the model that made ``view`` (for GABIC, with the same k); it is not changed.
    """
    if not 0 <= slices <= view.num_slices:
        raise ValueError(f"slices must be in 0..{view.num_slices}, got {slices}")
    if model.training:
        raise ValueError("the model is in training mode; call model.eval() first")
    if (model.arch, model.config.M, model.config.num_slices) != (view.arch, view.channels, view.num_slices):
        raise ValueError(f"this view was made by another model ({view.model_id}, {view.arch})")
    if isinstance(model, GABIC) and model.k != view.k:
        raise ValueError(f"this view was made with k={view.k}, the model uses k={model.k} "
                         "(pass gabic.codec.with_k(model, view.k))")  # fmt: skip
    device = next(model.parameters()).device
    decoded = torch.from_numpy(view.y_quantized).to(device).unsqueeze(0).chunk(view.num_slices, dim=1)
    left, right, top, bottom = view.pad

    cells = torch.from_numpy(view.coded_cells).to(device)

    def take(i: int, mu: Tensor, scale: Tensor) -> Tensor:
        # cells the codec does not code take the nearest coded value, stand-in means too
        return fill_uncoded_cells(decoded[i] if i < slices else mu, cells)

    with torch.no_grad(), codec.exact_kernels():
        gains = model.rate_gains(view.rate_quality)
        y_hat = model._code_slices(view.hyper_means.to(device), view.hyper_scales.to(device),
                                   view.latent_shape, take)  # fmt: skip
        x_hat = model.synthesise(y_hat if gains is None else y_hat * gains[1])
    return codec.crop_image(x_hat, (-left, -right, -top, -bottom)).clamp(0, 1)


def progressive_decoding(model: ChannelwiseAttentionCodec, view: EntropyView,
                         steps: Iterable[int] | None = None) -> ProgressiveDecoding:  # fmt: skip
    """:func:`decode_from_slices` for each ``s`` in ``steps`` (default ``0..S``), with PSNR
    against ``view.original`` and the cumulative estimated bits."""
    steps = list(range(view.num_slices + 1)) if steps is None else [int(s) for s in steps]
    reference = image_to_tensor(view.original)
    images, qualities, bits = [], [], []
    for s in steps:
        x_hat = decode_from_slices(model, view, s).cpu()
        images.append(tensor_to_image(x_hat))
        qualities.append(psnr(reference, x_hat))
        bits.append(cumulative_bits(view, s))
    return ProgressiveDecoding(
        model_id=view.model_id, arch=view.arch, quality=view.quality, num_slices=view.num_slices,
        pixels=view.pixels, steps=steps, reconstructions=images, psnr=qualities,
        bits=bits,
    )  # fmt: skip


__all__ = ["ProgressiveDecoding", "cumulative_bits", "decode_from_slices", "progressive_decoding"]
