"""Weights files read safely: our safetensors (+ model card), torch files without pickled code.

Only safe formats are read: safetensors, and torch files through
``torch.load(weights_only=True)``, which refuses pickles that would run code. Every loader builds
a new model and copies the file's tensors into it, so no two loaded models share anything.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..models import PAPER_CONFIG, ChannelwiseAttentionCodec, ModelConfig, build_model, rounded_quality

#: Entropy-coder tables: derived from the weights, rebuilt by ``update()``, shapes vary.
_ENTROPY_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
#: Buffers that hold constants of the architecture (CompressAI's ``LowerBound`` values and the
#: Gaussian scale bound). fp16 would flush the 1e-9 likelihood bound to 0 (infinite bits in training).
_CONSTANT_SUFFIX = "bound"


class CheckpointError(ValueError):
    """A weights file that cannot be loaded safely or does not fit the model."""


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def half_storage(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` for fp16 storage: floating weights in fp16, entropy-coder tables and the constant
    bound buffers kept as they are (fp16 would round the tables and flush the 1e-9 bound to 0)."""
    keep = (*_ENTROPY_BUFFERS, _CONSTANT_SUFFIX)
    return {k: (v.half() if v.is_floating_point() and not k.endswith(keep) else v) for k, v in state.items()}


def restore_constants(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with the architecture's constant bound buffers taken from ``model`` itself
    (files written in fp16 before they were kept in fp32 hold rounded or zero bounds)."""
    own = model.state_dict()
    return {k: (own[k].clone() if k.endswith(_CONSTANT_SUFFIX) and k in own else v) for k, v in state.items()}


def _describe_mismatch(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape and not k.endswith(_ENTROPY_BUFFERS)
    ]
    if not (missing or unexpected or shapes):
        return

    def show(items: list[str]) -> str:
        return ", ".join(items[:8]) + (f" … (+{len(items) - 8} more)" if len(items) > 8 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys: {show(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys: {show(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches: {show(shapes)}")
    raise CheckpointError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))


def _legacy_to_current(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ``entropy_bottleneck._matrix0``-style keys as CompressAI 1.2 names them."""
    from compressai.models.utils import remap_old_keys

    return dict(remap_old_keys("entropy_bottleneck", state))


def load_state_into(model: ChannelwiseAttentionCodec, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` (fp16 or fp32, legacy entropy-bottleneck names allowed) into ``model``.

    Raises:
        CheckpointError: missing or unexpected keys, or shapes that differ (the message lists them).
    """
    floating = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    floating = restore_constants(model, floating)
    renamed = _legacy_to_current(floating)
    _describe_mismatch(model, renamed, source)
    model.load_state_dict(floating)


def new_model(arch: str, config: ModelConfig, **metadata: Any) -> ChannelwiseAttentionCodec:
    """:func:`~gabic.models.build_model` for weights about to be loaded: the random initial
    weights are drawn from a forked generator, so loading never moves the caller's random stream."""
    with torch.random.fork_rng(devices=[]):
        return build_model(arch, config, **metadata)


def torch_load(path: Path) -> Any:
    """``torch.load`` that runs no pickled code; any failure is a :class:`CheckpointError`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: refused, the file holds Python objects that could run code "
            f"(only plain tensors and containers are accepted): {str(error).splitlines()[0]}"
        ) from None
    except Exception as error:  # noqa: BLE001 - torch raises anything (IndexError, KeyError...) on garbage
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({reason})") from None


# ------------------------------------------------------------------ our safetensors
def save_weights(model: ChannelwiseAttentionCodec, path: str | os.PathLike, card: dict[str, Any],
                 half: bool = True) -> None:  # fmt: skip
    """Write ``model`` as safetensors (floating weights in fp16 when ``half``) and its
    model card as JSON beside it (same name, ``.json``). Entropy-coder tables are included."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.update(force=False)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    if half:
        tensors = half_storage(tensors)
    card = {**card, "arch": model.arch, "config": model.config.to_dict()}
    save_file(tensors, str(path), metadata={"arch": model.arch, "format": "gabic-explorer/1"})
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")


@dataclass(frozen=True)
class WeightsFile:
    """The contents of one of our safetensors files and its model card (read only)."""

    path: Path
    arch: str
    config: ModelConfig
    card: dict[str, Any]
    state: dict[str, torch.Tensor]

    def build(self, device: torch.device | str | None = None, *, model_id: str, quality: float
              ) -> ChannelwiseAttentionCodec:  # fmt: skip
        """A new eval-mode model with these weights, on ``device`` (default: CUDA if present),
        with its own copy of the card."""
        model = new_model(self.arch, self.config, model_id=model_id, quality=quality,
                          card=copy.deepcopy(self.card))  # fmt: skip
        load_state_into(model, self.state, str(self.path))
        if model.gaussian_conditional.quantized_cdf.numel() == 0:
            model.update(force=True)
        return model.to(device or default_device()).eval()


def read_weights(path: str | os.PathLike, arch: str | None = None) -> WeightsFile:
    """Read our safetensors weights and the model card beside them (``arch`` overrides the card's).

    Raises:
        CheckpointError: no such file, no card and no ``arch``, or not a safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    card_path = path.with_suffix(".json")
    card: dict[str, Any] = json.loads(card_path.read_text()) if card_path.is_file() else {}
    arch = arch or card.get("arch")
    if arch is None:
        raise CheckpointError(f"{path}: no model card beside it; pass the architecture (--arch)")
    config = ModelConfig.from_dict(card["config"]) if "config" in card else PAPER_CONFIG
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
    return WeightsFile(path, arch, config, card, state)


def load_weights(path: str | os.PathLike, arch: str | None = None, device: torch.device | str | None = None,
                 quality: float | None = None) -> ChannelwiseAttentionCodec:  # fmt: skip
    """Load our safetensors weights; arch/config come from the model card beside the file,
    and so do ``model_id`` (default: the arch) and ``quality`` (default 0). A variable-rate
    model needs ``quality`` (its operating point, 1..rate_levels)."""
    weights = read_weights(path, arch)
    model_id = weights.card.get("model_id", weights.arch)
    if weights.config.variable_rate:
        if quality is None:
            raise CheckpointError(
                f"{path}: a variable-rate model; pass a quality in 1..{weights.config.rate_levels}"
            )
        return weights.build(
            device, model_id=model_id, quality=rounded_quality(quality, weights.config.rate_levels)
        )
    return weights.build(device, model_id=model_id, quality=weights.card.get("quality") or 0)
