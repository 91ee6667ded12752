"""Shared test helpers: small random-weight models saved like shipped ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gabic import zoo
from gabic.models import PAPER_CONFIG, SMALL_CONFIG, ModelConfig, build_model

#: A tiny configuration that keeps tests fast (same structure as the paper's).
TINY_CONFIG = ModelConfig(
    N=32, M=48, hyper_channels=32, num_slices=4, max_support_slices=2, slice_widths=(24, 16, 16, 12)
)


def write_random_weights(folder: Path, config: ModelConfig = SMALL_CONFIG, seed: int = 0) -> Path:
    """Untrained gabic-small/zou2022-small q1..q4 in ``folder`` (for tests and UI development).

    Each quality gets different random weights so tests can tell them apart.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, (arch, shipped_config) in zoo.SHIPPED.items():
        if shipped_config.variable_rate:  # one file for the continuous range 1..4
            torch.manual_seed(seed + 7 + (arch == "zou2022"))
            model = build_model(arch, config.with_rate_levels(shipped_config.rate_levels)).eval()
            with torch.no_grad():  # distinct gains per level, so the rate rises with the quality
                for level in range(shipped_config.rate_levels):
                    model.y_gain.log_gain[level].fill_(0.4 * (level - 1.5))
                    model.y_gain.log_inverse_gain[level].fill_(-0.4 * (level - 1.5))
            card = {"model_id": name, "quality": None, "trained": False, "note": "random weights for tests"}
            zoo.save_weights(model, folder / f"{name}.safetensors", card)
            continue
        for quality in zoo.QUALITIES:
            torch.manual_seed(seed + 10 * quality + (arch == "zou2022"))
            model = build_model(arch, config).eval()
            card = {"model_id": name, "quality": quality, "lambda": None, "trained": False,
                    "note": "random weights for tests"}  # fmt: skip
            zoo.save_weights(model, folder / f"{name}-q{quality}.safetensors", card)
    return folder


def random_image(height: int, width: int, seed: int = 0) -> Image.Image:
    """A smooth-ish random RGB image (gradients plus noise), deterministic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / max(width, 1), yy / max(height, 1), (xx + yy) / max(width + height, 1)], -1)
    array = np.clip(base * 200 + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(array, mode="RGB")


def tiny_codecs(seed: int) -> dict[str, torch.nn.Module]:
    """Random-weight tiny GABIC and Zou2022 in eval mode with entropy tables ready."""
    models = {}
    for arch in ("gabic", "zou2022"):
        torch.manual_seed(seed)
        model = build_model(arch, TINY_CONFIG).eval()
        model.update(force=True)
        models[arch] = model
    return models


#: CompressAI's current EntropyBottleneck parameter names -> the legacy names the authors saved.
LEGACY_NAMES = {"matrices": "_matrix", "biases": "_bias", "factors": "_factor"}


def authors_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s weights as the reference code saves them: legacy EntropyBottleneck names,
    DataParallel ``module.`` prefix, empty entropy-coder buffers."""
    state = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if parts[0] == "entropy_bottleneck" and parts[1] in LEGACY_NAMES:
            key = f"entropy_bottleneck.{LEGACY_NAMES[parts[1]]}{parts[2]}"
        if key.endswith(("_quantized_cdf", "_offset", "_cdf_length", "scale_table")):
            value = value.new_empty(0)
        state["module." + key] = value.clone()
    return state


def write_authors_checkpoints(folder: Path, qualities: tuple[int, ...] = (1,), seed: int = 0) -> Path:
    """Random paper-configuration GABIC and Zou2022 saved as the authors' ``.pth.tar`` files, laid
    out for ``--checkpoints``: ``folder/{gabic,zou2022}/q{quality}-model.pth.tar``."""
    for arch in ("gabic", "zou2022"):
        (folder / arch).mkdir(parents=True, exist_ok=True)
        for quality in qualities:
            torch.manual_seed(seed + 10 * quality + (arch == "zou2022"))
            model = build_model(arch, PAPER_CONFIG)
            torch.save({"state_dict": authors_state_dict(model), "epoch": 1},
                       folder / arch / f"q{quality}-model.pth.tar")  # fmt: skip
    return folder
