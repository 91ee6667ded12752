"""The shipped models and their cards in ``assets/weights``.

A family is either four one-rate files ``{name}-q{1..4}.safetensors`` (the paper's four λ), or
one variable-rate file ``{name}.safetensors`` whose gain units cover the continuous quality range
1..4 (the paper's λ at 1, 2, 3, 4). :func:`load` takes a quality of either kind.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..models import SMALL_CONFIG, ChannelwiseAttentionCodec, ModelConfig, rounded_quality
from .authors import load_checkpoint
from .files import WeightsFile, default_device, load_weights, read_weights

#: Folder of the shipped weights (``{name}-q{quality}.safetensors`` + ``.json`` model card).
#: The environment variable ``GABIC_WEIGHTS_DIR`` points it elsewhere (tests use this).
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "assets" / "weights"

#: Shipped model families: name -> (architecture, configuration).
SHIPPED: dict[str, tuple[str, ModelConfig]] = {
    "gabic-small": ("gabic", SMALL_CONFIG),
    "zou2022-small": ("zou2022", SMALL_CONFIG),
    "gabic-small-vr": ("gabic", SMALL_CONFIG.with_rate_levels(4)),
    "zou2022-small-vr": ("zou2022", SMALL_CONFIG.with_rate_levels(4)),
}
#: The families of each kind: one model per paper λ, and one variable-rate model each.
ONE_RATE_FAMILIES = {"gabic": "gabic-small", "zou2022": "zou2022-small"}
VARIABLE_RATE_FAMILIES = {"gabic": "gabic-small-vr", "zou2022": "zou2022-small-vr"}
QUALITIES = (1, 2, 3, 4)


def weights_dir() -> Path:
    """Where shipped weights are looked up (``$GABIC_WEIGHTS_DIR`` or ``assets/weights``)."""
    override = os.environ.get("GABIC_WEIGHTS_DIR")
    return Path(override) if override else SHIPPED_WEIGHTS_DIR


def _check_name(name: str) -> None:
    if name not in SHIPPED:
        raise KeyError(f"unknown model {name!r}; shipped models: {sorted(SHIPPED)}")


def variable_rate_path(name: str) -> Path:
    """Where the variable-rate file of family ``name`` is (whether or not it exists)."""
    _check_name(name)
    return weights_dir() / f"{name}.safetensors"


def is_variable_rate(name: str) -> bool:
    """True when family ``name`` ships as one variable-rate file (continuous quality 1..4)."""
    return variable_rate_path(name).is_file()


def shipped_path(name: str, quality: float) -> Path:
    """The file that holds ``name`` at ``quality``: the variable-rate file for any quality in
    1..4, or the one-rate file of quality 1, 2, 3 or 4."""
    if is_variable_rate(name):
        rounded_quality(quality, len(QUALITIES))
        return variable_rate_path(name)
    if float(quality) not in QUALITIES:
        continuous = next((vr for vr in VARIABLE_RATE_FAMILIES.values() if vr == f"{name}-vr"), None)
        hint = (
            f"; for any quality in 1..4 load {continuous!r} (one variable-rate model)" if continuous else ""
        )
        raise ValueError(
            f"{name} ships one model per quality: quality must be one of {QUALITIES}, got {quality}{hint}"
        )
    return weights_dir() / f"{name}-q{int(quality)}.safetensors"


def available(name: str) -> list[int]:
    """The paper's qualities of shipped model ``name`` present on disk (all four for a
    variable-rate family, which also takes any quality in between)."""
    if is_variable_rate(name):
        return list(QUALITIES)
    return [q for q in QUALITIES if shipped_path(name, q).is_file()]


#: (path, modification time, size) -> what the file holds: the tensors are read once, the
#: models built from them are new every time. A rewritten file is read again.
_FILES: dict[tuple[str, int, int], WeightsFile] = {}
_MAX_FILES = 32


def _read_shipped(path: Path) -> WeightsFile:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    weights = _FILES.get(key)
    if weights is None:
        weights = read_weights(path)
        if len(_FILES) >= _MAX_FILES:
            _FILES.clear()
        _FILES[key] = weights
    return weights


def load(name: str, quality: float, device: torch.device | str | None = None) -> ChannelwiseAttentionCodec:
    """A shipped model (``"gabic-small"`` or ``"zou2022-small"``) at ``quality`` 1..4, eval mode,
    on ``device`` (default: CUDA if present). A variable-rate family takes any quality in 1..4
    (rounded to hundredths, as containers record it); a one-rate family 1, 2, 3 or 4.

    Every call returns a new model of its own (changing its ``k`` or weights changes no other);
    only the file's tensors are kept in memory between calls.
    """
    path = shipped_path(name, quality)
    if not path.is_file():
        raise FileNotFoundError(f"{path.name} is not shipped yet (looked in {path.parent})")
    weights = _read_shipped(path)
    if weights.config.variable_rate:
        quality = rounded_quality(quality, weights.config.rate_levels)
    else:
        quality = int(quality)
    return weights.build(device or default_device(), model_id=name, quality=quality)


def load_model(spec: str, quality: float | None = None, arch: str | None = None,
               device: torch.device | str | None = None) -> ChannelwiseAttentionCodec:  # fmt: skip
    """Resolve ``spec``: a shipped name (needs ``quality``), a ``.safetensors`` file of ours,
    or an authors' ``.pth.tar``/``.pt`` checkpoint (needs ``arch``)."""
    if spec in SHIPPED:
        if quality is None:
            raise ValueError(f"{spec}: pass a quality (1..4)")
        return load(spec, quality, device)
    path = Path(spec)
    if path.suffix == ".safetensors":
        return load_weights(path, arch, device, quality)
    if path.suffix in (".tar", ".pth", ".pt", ".ckpt"):
        return load_checkpoint(path, arch or "gabic", device)
    raise ValueError(
        f"{spec!r} is neither a shipped model ({', '.join(sorted(SHIPPED))}) "
        "nor a .safetensors / .pth.tar file"
    )
