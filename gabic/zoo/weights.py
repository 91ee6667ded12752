"""Loading and saving weights: shipped models, our safetensors, the authors' ``.pth.tar``.

Only safe formats are read: safetensors, and torch files through
``torch.load(weights_only=True)``, which refuses pickles that would run code.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..models import PAPER_CONFIG, SMALL_CONFIG, ChannelwiseAttentionCodec, ModelConfig, build_model

#: Folder of the shipped weights (``{name}-q{quality}.safetensors`` + ``.json`` model card).
#: The environment variable ``GABIC_WEIGHTS_DIR`` points it elsewhere (tests use this).
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "assets" / "weights"


def weights_dir() -> Path:
    """Where shipped weights are looked up (``$GABIC_WEIGHTS_DIR`` or ``assets/weights``)."""
    override = os.environ.get("GABIC_WEIGHTS_DIR")
    return Path(override) if override else SHIPPED_WEIGHTS_DIR


#: Shipped model families: name -> (architecture, configuration).
SHIPPED: dict[str, tuple[str, ModelConfig]] = {
    "gabic-small": ("gabic", SMALL_CONFIG),
    "zou2022-small": ("zou2022", SMALL_CONFIG),
}
QUALITIES = (1, 2, 3, 4)
_ENTROPY_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")


class CheckpointError(ValueError):
    """A weights file that cannot be loaded safely or does not fit the model."""


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


#: Buffers that hold constants of the architecture (CompressAI's ``LowerBound`` values and the
#: Gaussian scale bound). fp16 would flush the 1e-9 likelihood bound to 0 (infinite bits in training).
_CONSTANT_SUFFIX = "bound"


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


def _load_state(model: ChannelwiseAttentionCodec, state: dict[str, torch.Tensor], source: str) -> None:
    floating = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    floating = restore_constants(model, floating)
    renamed = _legacy_to_current(floating)
    _describe_mismatch(model, renamed, source)
    model.load_state_dict(floating)


def _legacy_to_current(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ``entropy_bottleneck._matrix0``-style keys as CompressAI 1.2 names them."""
    from compressai.models.utils import remap_old_keys

    return dict(remap_old_keys("entropy_bottleneck", state))


def _torch_load(path: Path) -> Any:
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


def _finish(model: ChannelwiseAttentionCodec, device: torch.device | str | None) -> ChannelwiseAttentionCodec:
    model.update(force=True)
    return model.to(device or default_device()).eval()


def load_checkpoint(path: str | os.PathLike, arch: str = "gabic",
                    device: torch.device | str | None = None) -> ChannelwiseAttentionCodec:  # fmt: skip
    """Load an authors' checkpoint (``q{1..4}-model.pth.tar``) into the paper configuration.

    Accepts a dict with ``"state_dict"`` (or a bare state dict), strips a
    ``module.`` prefix, maps the legacy EntropyBottleneck names, calls
    ``update(force=True)`` and returns an eval-mode model.

    Raises:
        CheckpointError: unsafe pickle, unreadable file, or keys/shapes that do
            not match (the message lists them).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    raw = _torch_load(path)
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: no state dict of tensors inside")
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}
    model = build_model(arch, PAPER_CONFIG)
    _load_state(model, state, str(path))
    model.model_id = f"{arch}-paper"  # type: ignore[attr-defined]
    model.quality = _quality_from_name(path.name)  # type: ignore[attr-defined]
    model.card = {"arch": arch, "config": PAPER_CONFIG.to_dict(), "source": str(path)}  # type: ignore[attr-defined]
    return _finish(model, device)


def _quality_from_name(name: str) -> int:
    if len(name) > 1 and name[0] == "q" and name[1].isdigit():
        return int(name[1])
    return 0


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


def load_weights(path: str | os.PathLike, arch: str | None = None,
                 device: torch.device | str | None = None) -> ChannelwiseAttentionCodec:  # fmt: skip
    """Load our safetensors weights; arch/config come from the model card beside the file."""
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
    model = build_model(arch, config)
    _load_state(model, state, str(path))
    if model.gaussian_conditional.quantized_cdf.numel() == 0:
        model.update(force=True)
    model.model_id = card.get("model_id", arch)  # type: ignore[attr-defined]
    model.quality = int(card.get("quality", 0))  # type: ignore[attr-defined]
    model.card = card  # type: ignore[attr-defined]
    return model.to(device or default_device()).eval()


def shipped_path(name: str, quality: int) -> Path:
    if name not in SHIPPED:
        raise KeyError(f"unknown model {name!r}; shipped models: {sorted(SHIPPED)}")
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {QUALITIES}, got {quality}")
    return weights_dir() / f"{name}-q{quality}.safetensors"


def available(name: str) -> list[int]:
    """Qualities of shipped model ``name`` present on disk."""
    return [q for q in QUALITIES if shipped_path(name, q).is_file()]


_CACHE: dict[tuple[str, str, int, str], ChannelwiseAttentionCodec] = {}


def load(name: str, quality: int, device: torch.device | str | None = None) -> ChannelwiseAttentionCodec:
    """A shipped model (``"gabic-small"`` or ``"zou2022-small"``) at ``quality`` 1..4, eval mode.

    Models are cached per (name, quality, device); the same object is returned
    again, so do not change its weights in place.
    """
    path = shipped_path(name, quality)
    device = torch.device(device) if device is not None else default_device()
    key = (str(path), name, quality, str(device))
    if key not in _CACHE:
        if not path.is_file():
            raise FileNotFoundError(f"{path.name} is not shipped yet (looked in {path.parent})")
        model = load_weights(path, device=device)
        model.model_id, model.quality = name, quality  # type: ignore[attr-defined]
        _CACHE[key] = model
    return _CACHE[key]


def load_model(spec: str, quality: int | None = None, arch: str | None = None,
               device: torch.device | str | None = None) -> ChannelwiseAttentionCodec:  # fmt: skip
    """Resolve ``spec``: a shipped name (needs ``quality``), a ``.safetensors`` file of ours,
    or an authors' ``.pth.tar``/``.pt`` checkpoint (needs ``arch``)."""
    if spec in SHIPPED:
        if quality is None:
            raise ValueError(f"{spec}: pass a quality (1..4)")
        return load(spec, quality, device)
    path = Path(spec)
    if path.suffix == ".safetensors":
        return load_weights(path, arch, device)
    if path.suffix in (".tar", ".pth", ".pt", ".ckpt"):
        return load_checkpoint(path, arch or "gabic", device)
    raise ValueError(
        f"{spec!r} is neither a shipped model ({', '.join(sorted(SHIPPED))}) "
        "nor a .safetensors / .pth.tar file"
    )
