"""Image-quality metrics, computed as the paper does: on images rounded to 8 bits."""

from __future__ import annotations

import math

import torch
from pytorch_msssim import ms_ssim
from torch import Tensor

#: MS-SSIM is defined for images whose shorter side is larger than this.
MIN_MS_SSIM_SIDE = 160


def quantize_8bit(x: Tensor) -> Tensor:
    """Clamp to [0, 1] and round to the 8-bit grid."""
    return (x.clamp(0, 1) * 255).round() / 255


def psnr(reference: Tensor, distorted: Tensor) -> float:
    """PSNR in dB between two ``(B, 3, H, W)`` images in [0, 1], both rounded to 8 bits.

    Identical images give ``inf``.
    """
    mse = torch.mean((quantize_8bit(reference) - quantize_8bit(distorted)) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def msssim(reference: Tensor, distorted: Tensor) -> float:
    """MS-SSIM (pytorch-msssim, 5 scales) between two ``(B, 3, H, W)`` images in [0, 1],
    both rounded to 8 bits.

    MS-SSIM needs a shorter side above 160 px (four halvings of an 11-px
    window); smaller images give ``nan`` rather than a number on a different scale.
    """
    if min(reference.shape[-2:]) <= MIN_MS_SSIM_SIDE:
        return math.nan
    # channels-last: pytorch-msssim's depthwise Gaussian filters take half the time on a CPU
    a = quantize_8bit(reference).float().contiguous(memory_format=torch.channels_last)
    b = quantize_8bit(distorted).float().contiguous(memory_format=torch.channels_last)
    return float(ms_ssim(a, b, data_range=1.0, size_average=True))


def bits_per_pixel(num_bits: float, height: int, width: int) -> float:
    """Bits divided by the pixels of the (unpadded) image."""
    return num_bits / float(height * width)
