"""The entropy model opened up: what the hyperprior and the slices predict, element by element.

:func:`entropy_view` runs one image through a model's analysis transform, hyperprior and
channel-wise slice loop exactly as :func:`gabic.codec.encode_tensor` does (same padding, same
quantisation, same likelihoods, bit for bit) and returns an :class:`EntropyView`: for every
latent element ``y``, its prediction ``μ`` and scale ``σ``, the quantised value, the value after
latent residual prediction, and its cost ``−log₂ p``. Sums of that cost give bits per channel,
per slice and per cell; the max-entropy channel is Zou2022's Fig. 3 recipe.

Latent cells are at 1/16 of the *padded* image (the codec pads to a multiple of 64, in its default
compact layout: :mod:`gabic.codec.layout`); cell ``(r, c)`` covers padded pixels
``[16 r, 16 r + 16)`` vertically and likewise horizontally. Cells the codec leaves out of the
stream cost 0 bits here and carry the nearest coded cell's value, as in the codec.
:attr:`EntropyView.image_fraction` says how much of each cell lies in the original image,
:attr:`EntropyView.in_image` which cells have their centre in it (the ones maps show).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .. import codec
from ..codec.images import image_to_tensor, load_image
from ..models import GABIC, ChannelwiseAttentionCodec, fill_uncoded_cells

#: Pixels per latent cell of ``y`` and of ``z``.
Y_STRIDE = 16
Z_STRIDE = 64


@dataclass
class EntropyView:
    """One image through one model's entropy model (all maps of the padded image).

    Per-element maps are ``(M, h, w)`` float32 arrays, ``h, w`` = padded size / 16:

    Attributes:
        y: the latent the encoder quantises (after the gain of a variable-rate model).
        mu, sigma: the Gaussian's mean and scale predicted for every element from the
            hyperprior and the previous slices (``sigma`` after the entropy model's lower
            bound, i.e. the scale the likelihood uses).
        y_quantized: ``round(y − μ) + μ``, what the bitstream carries.
        y_hat: ``y_quantized`` plus the latent residual prediction ``0.5·tanh(lrp)``, what the
            synthesis transform receives.
        bits: ``−log₂ p(y_quantized)`` of every element, as the codec estimates it.
        z_bits: ``(C_z, h/4, w/4)`` ``−log₂ p`` of the hyper-latent ``ẑ``.
        hyper_means, hyper_scales: ``(1, M, h, w)`` tensors ``h_mean_s(ẑ)``, ``h_scale_s(ẑ)``
            (what the decoder knows before any slice; :mod:`gabic.inspect.progressive` uses them).
        pad: ``(left, right, top, bottom)`` pixels the codec added around the image.
        layout: where the codec put the image in the padded canvas (:mod:`gabic.codec.layout`).
        rate_quality: the ``quality`` passed to a variable-rate model (``None`` otherwise);
            ``quality`` is the model's identity (zoo quality, 0 if unknown).
        k: neighbours per node GABIC used (``None`` for Zou2022).
    """

    model_id: str
    arch: str
    quality: float
    rate_quality: float | None
    k: int | None
    width: int
    height: int
    original: Image.Image
    pad: tuple[int, int, int, int]
    layout: str
    num_slices: int
    y: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    y_quantized: np.ndarray
    y_hat: np.ndarray
    bits: np.ndarray
    z_bits: np.ndarray
    hyper_means: Tensor
    hyper_scales: Tensor

    # ------------------------------------------------------------ geometry
    @property
    def channels(self) -> int:
        return self.bits.shape[0]

    @property
    def latent_shape(self) -> tuple[int, int]:
        """``(h, w)`` of ``y``."""
        return self.bits.shape[1], self.bits.shape[2]

    @property
    def slice_channels(self) -> int:
        return self.channels // self.num_slices

    def slice_of(self, channel: int) -> int:
        """The slice a channel belongs to (slices are consecutive channel groups)."""
        return int(channel) // self.slice_channels

    @property
    def image_fraction(self) -> np.ndarray:
        """``(h, w)`` share of each latent cell's pixels inside the original image
        (1 inside, 0 for cells wholly in the codec's padding)."""
        left, _, top, _ = self.pad
        h, w = self.latent_shape
        rows = _overlap(h, Y_STRIDE, top, self.height)
        cols = _overlap(w, Y_STRIDE, left, self.width)
        return np.outer(rows, cols).astype(np.float32)

    @property
    def coded_cells(self) -> np.ndarray:
        """``(h, w)`` True for the cells the bitstream carries (the others cost no bits and take
        the nearest coded cell's values; :func:`gabic.codec.coded_cells`)."""
        cells = codec.coded_cells(self.height, self.width, self.layout)
        return np.ones(self.latent_shape, dtype=bool) if cells is None else cells.numpy()

    @property
    def padding_cells(self) -> np.ndarray:
        """``(h, w)`` True for cells with no pixel of the original image."""
        return self.image_fraction == 0

    @property
    def in_image(self) -> np.ndarray:
        """``(h, w)`` True for cells whose centre lies in the original image (at least half of
        the cell in each direction): the cells a map should show and scale its colours on."""
        left, _, top, _ = self.pad
        h, w = self.latent_shape
        rows = (np.arange(h) + 0.5) * Y_STRIDE
        cols = (np.arange(w) + 0.5) * Y_STRIDE
        return np.outer(
            (rows >= top) & (rows < top + self.height), (cols >= left) & (cols < left + self.width)
        )

    @property
    def image_cells(self) -> tuple[slice, slice]:
        """Row and column slices of the :attr:`in_image` cells (crop with ``maps[..., rows, cols]``).
        A tiny image whose cells all straddle the border keeps its most-covered cells."""
        inside = self.in_image if self.in_image.any() else self.image_fraction == self.image_fraction.max()
        rows = np.flatnonzero(inside.any(axis=1))
        cols = np.flatnonzero(inside.any(axis=0))
        return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)

    # ---------------------------------------------------------------- bits
    @property
    def channel_bits(self) -> np.ndarray:
        """``(M,)`` estimated bits of each latent channel (over all cells, padding included);
        they sum to :attr:`y_bits_total`."""
        return self.bits.sum(axis=(1, 2), dtype=np.float64)

    @property
    def slice_bits(self) -> np.ndarray:
        """``(S,)`` estimated bits of each slice, in coding order."""
        return self.channel_bits.reshape(self.num_slices, -1).sum(axis=1)

    @property
    def y_bits_total(self) -> float:
        return float(self.bits.sum(dtype=np.float64))

    @property
    def z_bits_total(self) -> float:
        return float(self.z_bits.sum(dtype=np.float64))

    @property
    def bits_total(self) -> float:
        """Estimated bits of y and z (the real stream adds the coder's overhead and a header)."""
        return self.y_bits_total + self.z_bits_total

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def bpp_estimated(self) -> float:
        return self.bits_total / self.pixels

    @property
    def padding_bits(self) -> float:
        """Estimated y bits spent in cells wholly in the padding."""
        return float(self.bits[:, self.padding_cells].sum(dtype=np.float64))

    @property
    def cell_bits(self) -> np.ndarray:
        """``(h, w)`` y bits per latent cell (sum over channels)."""
        return self.bits.sum(axis=0)

    @property
    def channels_by_bits(self) -> np.ndarray:
        """Channel indices, most expensive first."""
        return np.argsort(-self.channel_bits, kind="stable")

    @property
    def max_entropy_channel(self) -> int:
        """The channel with the most bits (Zou2022's Fig. 3 shows its bit map)."""
        return int(self.channels_by_bits[0])

    @property
    def lrp(self) -> np.ndarray:
        """``(M, h, w)`` the latent residual prediction added to each quantised element."""
        return self.y_hat - self.y_quantized


def _overlap(cells: int, stride: int, offset: int, size: int) -> np.ndarray:
    """Share of each of ``cells`` cells of ``stride`` px (padded coordinates) inside
    ``[offset, offset + size)``."""
    starts = np.arange(cells) * stride
    inside = np.clip(np.minimum(starts + stride, offset + size) - np.maximum(starts, offset), 0, stride)
    return inside / stride


def _check_model(model: ChannelwiseAttentionCodec) -> torch.device:
    if model.training:
        raise ValueError("the model is in training mode; call model.eval() first")
    return next(model.parameters()).device


def image_tensor(image: object) -> tuple[Image.Image, Tensor]:
    """``image`` (PIL image, path, bytes or array) as an RGB PIL image and a ``(1, 3, H, W)``
    tensor, refused with a clear message if the codec does not accept its size."""
    original = load_image(image)
    if original.width * original.height > codec.MAX_CODEC_PIXELS:
        raise ValueError(
            f"{original.width}×{original.height} is larger than the codec limit of "
            f"{codec.MAX_CODEC_PIXELS:,} pixels; downscale it first"
        )
    return original, image_to_tensor(original)


def entropy_view(
    model: ChannelwiseAttentionCodec, image: object, quality: float | None = None
) -> EntropyView:
    """Run ``image`` through ``model``'s hyperprior and slice loop and record every element.

    The pass is the encoder's (:meth:`~gabic.models.ChannelwiseAttentionCodec.compress`) without
    the rANS coder and without ``g_s``: the image is padded with :func:`gabic.codec.pad_image`,
    run under ``torch.no_grad`` and :func:`gabic.codec.exact_kernels`, so ``bits`` equal
    ``−log₂`` of the likelihoods :func:`gabic.codec.encode_tensor` returns.

    Args:
        model: an eval-mode codec (e.g. :func:`gabic.zoo.load`).
        image: PIL image, path, bytes or array.
        quality: for a variable-rate model (``config.rate_levels > 0``), the rate in
            ``1..rate_levels``; must be ``None`` for a one-rate model.

    ``model`` is not changed. For GABIC with another k, pass a copy that uses it
    (:func:`gabic.codec.with_k`); the view records the k it ran with.
    """
    device = _check_model(model)
    if quality is not None and not model.config.variable_rate:
        raise ValueError("quality= applies to variable-rate models only (config.rate_levels > 0)")
    original, x = image_tensor(image)
    layout = codec.DEFAULT_LAYOUT  # as the codec encodes (an image without padding: the same either way)
    padded, unpad = codec.pad_image(x.to(device), layout=layout)
    cells = codec.coded_cells(original.height, original.width, layout, device)
    gc = model.gaussian_conditional
    with torch.no_grad(), codec.exact_kernels():
        gains = model.rate_gains(quality)
        y, z = model.analyse(padded, gains)
        z_likelihoods = model.entropy_bottleneck(z, training=False)[1]
        medians = model._z_medians()
        z_hat = torch.round(z - medians) + medians
        hyper_means, hyper_scales = model._hyper_decode(z_hat if gains is None else z_hat * gains[3])

        y_slices = y.chunk(model.config.num_slices, dim=1)
        recorded: dict[str, list[Tensor]] = {"mu": [], "sigma": [], "quantized": [], "likelihood": []}

        def record(i: int, mu: Tensor, scale: Tensor) -> Tensor:
            quantized, likelihood = gc(y_slices[i], scale, mu, training=False)
            if cells is not None:  # the cells the codec leaves out: no bits, the nearest coded value
                likelihood = torch.where(cells, likelihood, torch.ones_like(likelihood))
                quantized = fill_uncoded_cells(quantized, cells)
            recorded["mu"].append(mu)
            recorded["sigma"].append(gc.lower_bound_scale(scale))
            recorded["quantized"].append(quantized)
            recorded["likelihood"].append(likelihood)
            return quantized

        y_hat = model._code_slices(hyper_means, hyper_scales, y.shape[-2:], record)

    def maps(parts: list[Tensor]) -> np.ndarray:
        return torch.cat(parts, dim=1)[0].float().cpu().numpy()

    if model.config.variable_rate and quality is None:
        quality = model.quality  # the operating point the model was built at (rate_gains used it)
    return EntropyView(
        model_id=model.model_id, arch=model.arch, quality=model.quality,
        rate_quality=None if quality is None else float(quality),
        k=model.k if isinstance(model, GABIC) else None,
        width=original.width, height=original.height, original=original,
        pad=tuple(-int(v) for v in unpad), layout=layout, num_slices=model.config.num_slices,
        y=y[0].float().cpu().numpy(), mu=maps(recorded["mu"]), sigma=maps(recorded["sigma"]),
        y_quantized=maps(recorded["quantized"]), y_hat=y_hat[0].float().cpu().numpy(),
        bits=(-torch.log2(torch.cat(recorded["likelihood"], dim=1)[0])).float().cpu().numpy(),
        z_bits=(-torch.log2(z_likelihoods[0])).float().cpu().numpy(),
        hyper_means=hyper_means.cpu(), hyper_scales=hyper_scales.cpu(),
    )  # fmt: skip


__all__ = ["Y_STRIDE", "Z_STRIDE", "EntropyView", "entropy_view", "image_tensor"]
