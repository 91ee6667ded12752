"""The ``app`` part: what the explorer waits for on a new photo, a full :func:`gabic.inspect.analyze`
with both shipped-configuration models at quality 2, as the app runs it (the reconstruction from the
encoder's ``ŷ``: ``decode=False``), and each model's analysis with a real decode beside it."""

from __future__ import annotations

from typing import Any

from .. import zoo
from ..inspect import analyze
from ..models import ChannelwiseAttentionCodec
from .inputs import Settings, load_photo, make_model
from .timing import time_call

#: The quality the app part analyses at.
APP_QUALITY = 2


def app_models(device: str) -> tuple[dict[str, ChannelwiseAttentionCodec], str]:
    """Both one-rate shipped models (the app's default families) at :data:`APP_QUALITY`, or random
    weights of the shipped configuration where the weights are missing; with a description of which."""
    models = {}
    source = "shipped weights"
    for name in zoo.ONE_RATE_FAMILIES.values():
        arch, config = zoo.SHIPPED[name]
        try:
            models[name] = zoo.load(name, APP_QUALITY, device)
        except (FileNotFoundError, KeyError, ValueError):
            models[name] = make_model(arch, config, device)
            source = "random weights of the shipped configuration (weights not shipped yet)"
    return models, source


def bench_app(device: str, settings: Settings) -> dict[str, Any]:
    """``analyze`` of the photo by both models together and by each alone."""
    photo, photo_name = load_photo(settings.photo, settings.width, settings.height)
    models, source = app_models(device)

    def analyze_both() -> None:
        for model in models.values():
            analyze(model, photo, decode=False)

    result: dict[str, Any] = {"device": device, "photo": photo_name, "size": [photo.width, photo.height],
                              "weights": source, "quality": APP_QUALITY, "decode": False}  # fmt: skip
    result["analyze_both"] = time_call(analyze_both, device, settings.repeats, settings.warmup)
    for name, model in models.items():
        result[f"analyze_{name}"] = time_call(
            lambda m=model: analyze(m, photo, decode=False), device, settings.repeats, 0
        )
        # the same with a real decode of the container, for comparison
        result[f"analyze_{name}_decoded"] = time_call(
            lambda m=model: analyze(m, photo), device, settings.repeats, 0
        )
    return result
