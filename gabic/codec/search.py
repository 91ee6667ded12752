r"""Encoder search: more encoder time for fewer bits, with the same decoder and container.

The analysis transform predicts an image's latents ``y`` and ``z`` in one pass; for that one image
they are not where its rate-distortion loss is lowest (the amortisation gap: Yang, Bamler and
Mandt, "Improving Inference for Neural Image Compression", NeurIPS 2020). :func:`search_latents`
starts from them and takes ``steps`` Adam steps on the image's own loss

.. math::

    L(y, z) = \frac{\text{bits}(\tilde y, \tilde z)}{H W}
              + \lambda \cdot 255^2 \cdot \text{MSE}\big(x, g_s(\tilde y)\big)

where the rounding of ``y`` (around each slice's predicted mean) and of ``z`` (around its
medians) is replaced by stochastic Gumbel annealing (:func:`annealed_round`), soft and random at
the first step and close to the hard rounding at the last. The latents it returns are coded as
usual (:meth:`~gabic.models.ChannelwiseAttentionCodec.compress` with ``latents=``): every decoder
of the model decodes them, and the container does not say that a search was made.

.. code-block:: none

    x ─ g_a, h_a ─► y₀, z₀ ─ Adam on L(y, z), τ: 0.5 → 0.05 ─► y, z ─ compress ─► container
                    └──────── the lower hard-rounded L of the two ─────┘

Only the encoder changes: the model's weights are read, never written, and no gradient is kept
on them.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..models import ChannelwiseAttentionCodec, fill_uncoded_cells
from ..models.lambdas import QUALITY_LAMBDAS, lambda_at
from .layout import crop_image

#: Adam's step size on the latents at the first step, in quantisation bins (the latents are
#: gain-scaled); it falls on a half cosine to a tenth of that at the last step.
SEARCH_LEARNING_RATE = 0.05
#: The annealing temperature at the first and the last step (geometric in between).
TEMPERATURE_START, TEMPERATURE_END = 0.5, 0.05
#: The most steps one call may take (``effort``).
MAX_EFFORT = 1000


def effort_argument(text: str) -> int:
    """``--effort`` on a command line: a whole number of steps in ``0..MAX_EFFORT``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"effort must be a whole number of steps, got {text!r}") from None
    if not 0 <= value <= MAX_EFFORT:
        raise argparse.ArgumentTypeError(f"effort must be in 0..{MAX_EFFORT}, got {value}")
    return value


def annealed_round(values: Tensor, temperature: float, generator: torch.Generator | None = None) -> Tensor:
    r"""A differentiable, random stand-in for ``round(values)`` (stochastic Gumbel annealing, after
    Yang et al. 2020). With ``a = v − ⌊v⌋``:

    .. math::

        \tilde v = \lfloor v \rfloor + \sigma\Big(\frac{\operatorname{atanh}(a)
                   - \operatorname{atanh}(1 - a)}{\tau} + g\Big), \quad g \sim \text{Logistic}(0, 1)

    The weight on ``⌈v⌉`` grows with ``a``; as ``τ → 0`` it becomes 0 or 1, i.e. ``round(values)``,
    except near a tie (``a = ½``), where it stays uniform in (0, 1): the noise is not divided by
    ``τ`` here, where Yang et al.'s Gumbel-softmax divides it too (this form was the one measured,
    ``docs/codec.md#encoder-search``). Any shape; the gradient flows through ``a``.
    """
    floor = torch.floor(values).detach()
    fraction = (values - floor).clamp(1e-5, 1 - 1e-5)
    uniform = torch.rand(values.shape, generator=generator, device=values.device, dtype=values.dtype)
    uniform = uniform.clamp(1e-6, 1 - 1e-6)
    logistic = torch.log(uniform) - torch.log1p(-uniform)
    towards_ceiling = (torch.atanh(fraction) - torch.atanh(1 - fraction)) / temperature
    return floor + torch.sigmoid(towards_ceiling + logistic)


def search_lambda(model: ChannelwiseAttentionCodec, quality: float | None) -> float:
    """The λ the search weighs distortion by: the quality's λ (:func:`~gabic.models.lambdas.lambda_at`)
    for a variable-rate model, the λ the model was trained at for a one-rate one.

    Raises:
        ValueError: a one-rate model whose quality is not one of the paper's four.
    """
    if model.config.variable_rate:
        return lambda_at(model.quality if quality is None else quality)
    if model.quality not in QUALITY_LAMBDAS:
        raise ValueError(
            "encoder search needs the λ the model was trained at; this one-rate model does not "
            f"name one of the qualities {sorted(QUALITY_LAMBDAS)}"
        )
    return QUALITY_LAMBDAS[int(model.quality)]


def rate_distortion_loss(model: ChannelwiseAttentionCodec, y: Tensor, z: Tensor, image: Tensor,
                         unpad: tuple[int, int, int, int], quality: float | None,
                         coded_cells: Tensor | None, lmbda: float, temperature: float | None,
                         generator: torch.Generator | None = None) -> Tensor:  # fmt: skip
    """``L(y, z)`` of the module docstring for one image: ``y`` ``(1, M, h, w)`` and ``z`` gain-scaled
    as :meth:`~gabic.models.ChannelwiseAttentionCodec.analyse` returns them, ``image``
    ``(1, 3, H, W)`` in [0, 1] (the unpadded original), ``unpad`` from :func:`~gabic.codec.pad_image`.

    ``temperature=None`` rounds hard (the loss of what the codec would write, with likelihoods
    for bits); a number rounds with :func:`annealed_round` at that temperature. Cells outside
    ``coded_cells`` cost nothing and take the nearest coded cell's value, as in the codec.
    """
    gains = model.rate_gains(quality)

    def rounded(values: Tensor) -> Tensor:
        return torch.round(values) if temperature is None else annealed_round(values, temperature, generator)

    bottleneck, conditional = model.entropy_bottleneck, model.gaussian_conditional
    medians = model._z_medians()
    z_hat = rounded(z - medians) + medians
    channels = z.shape[1]
    z_likelihood, _, _ = bottleneck._likelihood(z_hat.permute(1, 0, 2, 3).reshape(channels, 1, -1))
    bits = -torch.log2(bottleneck.likelihood_lower_bound(z_likelihood)).sum()
    hyper_means, hyper_scales = model._hyper_decode(z_hat if gains is None else z_hat * gains[3])
    y_slices = y.chunk(model.config.num_slices, dim=1)
    slice_bits: list[Tensor] = []

    def quantise(index: int, mean: Tensor, scale: Tensor) -> Tensor:
        y_hat = rounded(y_slices[index] - mean) + mean
        likelihood = conditional.likelihood_lower_bound(conditional._likelihood(y_hat, scale, mean))
        if coded_cells is not None:
            likelihood = torch.where(coded_cells, likelihood, torch.ones_like(likelihood))
            y_hat = fill_uncoded_cells(y_hat, coded_cells)
        slice_bits.append(-torch.log2(likelihood).sum())
        return y_hat

    y_hat = model._code_slices(hyper_means, hyper_scales, y.shape[-2:], quantise)
    x_hat = crop_image(model.synthesise(y_hat if gains is None else y_hat * gains[1]), unpad)
    bits_per_pixel = (bits + torch.stack(slice_bits).sum()) / (image.shape[-2] * image.shape[-1])
    return bits_per_pixel + lmbda * 255**2 * torch.mean((x_hat - image) ** 2)


def search_latents(model: ChannelwiseAttentionCodec, padded: Tensor, image: Tensor,
                   unpad: tuple[int, int, int, int], quality: float | None, coded_cells: Tensor | None,
                   steps: int, seed: int = 0,
                   on_step: Callable[[int], None] | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Latents ``(y, z)`` of one image with a lower rate-distortion loss than its analysis.

    ``padded`` ``(1, 3, H', W')`` is the image as the codec pads it, ``image`` ``(1, 3, H, W)`` the
    original (the distortion is measured on it only), ``unpad`` and ``coded_cells`` as the codec
    computes them for its layout. Takes ``steps`` Adam steps (:data:`SEARCH_LEARNING_RATE`, on a
    half cosine to a tenth) with the temperature falling geometrically from :data:`TEMPERATURE_START` to
    :data:`TEMPERATURE_END`, then returns whichever of the analysis and the result has the lower
    hard-rounded loss, so the search never makes that loss worse. Random draws come from a
    generator seeded by ``seed``: the same image, model and steps give the same latents on one
    machine. ``model`` must be in eval mode; it is not changed. ``on_step(n)`` is called after each
    step ``n`` = 1 … ``steps`` (a progress bar's hook).
    """
    if not 0 <= steps <= MAX_EFFORT:
        raise ValueError(f"effort must be a number of steps in 0..{MAX_EFFORT}, got {steps}")
    lmbda = search_lambda(model, quality)
    gains = model.rate_gains(quality)
    with torch.no_grad():
        y_start, z_start = model.analyse(padded, gains)
    if steps == 0:
        return y_start, z_start
    generator = torch.Generator(device=padded.device).manual_seed(seed)
    y = y_start.clone().requires_grad_(True)
    z = z_start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([y, z], lr=SEARCH_LEARNING_RATE)
    for step in range(steps):
        progress = step / max(steps - 1, 1)
        temperature = TEMPERATURE_START * (TEMPERATURE_END / TEMPERATURE_START) ** progress
        optimizer.param_groups[0]["lr"] = SEARCH_LEARNING_RATE * (
            0.1 + 0.45 * (1 + math.cos(math.pi * progress))
        )
        loss = rate_distortion_loss(model, y, z, image, unpad, quality, coded_cells, lmbda, temperature,
                                    generator)  # fmt: skip
        y.grad, z.grad = torch.autograd.grad(loss, [y, z])  # no gradient reaches the weights
        optimizer.step()
        if on_step is not None:
            on_step(step + 1)
    with torch.no_grad():
        start_loss, end_loss = (
            rate_distortion_loss(model, y_, z_, image, unpad, quality, coded_cells, lmbda, None)
            for y_, z_ in ((y_start, z_start), (y, z))
        )
        if bool(end_loss < start_loss):
            return y.detach(), z.detach()
    return y_start, z_start
