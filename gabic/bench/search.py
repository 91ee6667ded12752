"""The ``search`` part: what encoder search (:mod:`gabic.codec.search`) costs and gains on one photo,
with both shipped variable-rate models at quality 2: the encode at effort 0 and at ``search_effort``
steps, its time and its container's size and PSNR."""

from __future__ import annotations

from typing import Any

from .. import codec, zoo
from ..codec.images import image_to_tensor
from ..metrics import psnr
from ..models import ChannelwiseAttentionCodec
from .inputs import Settings, load_photo, make_model
from .timing import time_call

#: The quality the search part codes at, and the effort it times by default.
SEARCH_QUALITY, SEARCH_EFFORT = 2.0, 30


def search_models(device: str) -> tuple[dict[str, ChannelwiseAttentionCodec], str]:
    """Both shipped variable-rate models at :data:`SEARCH_QUALITY`, or random weights of their
    configuration where the weights are missing; with a description of which."""
    models, source = {}, "shipped weights"
    for name in zoo.VARIABLE_RATE_FAMILIES.values():
        try:
            models[name] = zoo.load(name, SEARCH_QUALITY, device)
        except (FileNotFoundError, KeyError, ValueError):
            arch, config = zoo.SHIPPED[name]
            models[name] = codec.with_quality(make_model(arch, config, device), SEARCH_QUALITY)
            source = "random weights of the shipped configuration (weights not shipped)"
    return models, source


def bench_search(device: str, settings: Settings, effort: int = SEARCH_EFFORT) -> dict[str, Any]:
    """Encode the photo with each model at effort 0 and ``effort``: times, bytes, PSNR of the decoded image."""
    photo, photo_name = load_photo(settings.photo, settings.width, settings.height)
    x = image_to_tensor(photo)
    models, source = search_models(device)
    rows = []
    for name, model in models.items():
        for steps in (0, effort):
            data = codec.compress_tensor(model, x, effort=steps)
            decoded = codec.decompress_tensor(data, model).cpu()
            timing = time_call(lambda m=model, s=steps: codec.compress_tensor(m, x, effort=s), device,
                               settings.repeats, settings.warmup if steps == 0 else 0)  # fmt: skip
            rows.append({"model": name, "effort": steps, "encode": timing, "bytes": len(data),
                         "bpp": len(data) * 8 / (photo.width * photo.height), "psnr": psnr(x, decoded)})  # fmt: skip
    return {"device": device, "photo": photo_name, "size": [photo.width, photo.height], "weights": source,
            "quality": SEARCH_QUALITY, "rows": rows}  # fmt: skip
