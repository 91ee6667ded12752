"""What the benchmark parts measure on: the settings, random-weight models, inputs, the app's
photo and the machine description stored with every report."""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageOps

from ..models import ChannelwiseAttentionCodec, ModelConfig, build_model
from ..records import machine_description as base_machine_description

ARCHS = ("gabic", "zou2022")
#: The scikit-image sample photo of the app part when ``--photo`` is not given: 600×400, the
#: 3:2 aspect of the default 768×512, bundled with scikit-image (nothing is downloaded).
DEFAULT_PHOTO = "coffee"


@dataclass(frozen=True)
class Settings:
    """The measuring settings shared by every part.

    Attributes:
        width, height: input image size (model-level parts, blocks, graph core, app photo).
        repeats, warmup: timed and untimed calls per measurement.
        train_batch, train_patch: training-step batch ``(train_batch, 3, train_patch, train_patch)``.
        train_bf16: time the training step with the transforms under bfloat16 autocast.
        photo: image file for the app part; ``None``: :data:`DEFAULT_PHOTO` resized to the size.
    """

    width: int = 768
    height: int = 512
    repeats: int = 5
    warmup: int = 1
    train_batch: int = 8
    train_patch: int = 128
    train_bf16: bool = False
    photo: str | None = None


def make_model(arch: str, config: ModelConfig, device: str, seed: int = 0) -> ChannelwiseAttentionCodec:
    """Random-weight eval-mode model with entropy tables built (timings do not depend on training)."""
    torch.manual_seed(seed)
    model = build_model(arch, config).to(device).eval()
    model.update(force=True)
    return model


def make_image(width: int, height: int, device: str = "cpu", seed: int = 0) -> torch.Tensor:
    """``(1, 3, height, width)`` uniform random pixels in [0, 1], the same for a given seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, height, width, generator=generator).to(device)


def load_photo(path: str | None, width: int, height: int) -> tuple[Image.Image, str]:
    """The app part's photo and a description of it for the report.

    ``path`` given: that image file, at its own size. Otherwise scikit-image's
    :data:`DEFAULT_PHOTO`, centre-cropped to the aspect of ``width × height`` and
    resized to it; without scikit-image, random pixels (:func:`make_image`).
    """
    from ..codec.images import load_image, tensor_to_image

    if path is not None:
        return load_image(Path(path)), Path(path).name
    try:
        import skimage.data
    except ImportError:
        return tensor_to_image(make_image(width, height)), "generated image (random pixels; no scikit-image)"
    sample = Image.fromarray(getattr(skimage.data, DEFAULT_PHOTO)()).convert("RGB")
    photo = ImageOps.fit(sample, (width, height), Image.Resampling.LANCZOS)
    return (
        photo,
        f"scikit-image {DEFAULT_PHOTO!r} {sample.width}x{sample.height}, resized to {width}x{height}",
    )


def machine_description(devices: list[str]) -> dict[str, Any]:
    """:func:`gabic.records.machine_description` plus the platform, the devices benchmarked,
    the load average and the CUDA device when present."""
    info: dict[str, Any] = {**base_machine_description(), "platform": platform.platform(), "devices": devices}
    info.pop("device", None)
    with contextlib.suppress(OSError):
        info["load_average"] = list(os.getloadavg())
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info
