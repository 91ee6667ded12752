"""The authors' checkpoints: ``q{1..4}-model.pth.tar`` of the paper configuration."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..models import PAPER_CONFIG, ChannelwiseAttentionCodec
from .files import CheckpointError, default_device, load_state_into, new_model, torch_load


def load_checkpoint(path: str | os.PathLike, arch: str = "gabic",
                    device: torch.device | str | None = None) -> ChannelwiseAttentionCodec:  # fmt: skip
    """Load an authors' checkpoint (``q{1..4}-model.pth.tar``) into the paper configuration.

    Accepts a dict with ``"state_dict"`` (or a bare state dict), strips a
    ``module.`` prefix, maps the legacy EntropyBottleneck names, calls
    ``update(force=True)`` and returns an eval-mode model with ``model_id``
    ``"{arch}-paper"`` and the quality the file name starts with (0 if none).

    Raises:
        CheckpointError: unsafe pickle, unreadable file, or keys/shapes that do
            not match (the message lists them).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    raw = torch_load(path)
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: no state dict of tensors inside")
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}
    card = {"arch": arch, "config": PAPER_CONFIG.to_dict(), "source": str(path)}
    model = new_model(arch, PAPER_CONFIG, model_id=f"{arch}-paper", quality=_quality_from_name(path.name),
                      card=card)  # fmt: skip
    load_state_into(model, state, str(path))
    model.update(force=True)
    return model.to(device or default_device()).eval()


def _quality_from_name(name: str) -> int:
    if len(name) > 1 and name[0] == "q" and name[1].isdigit():
        return int(name[1])
    return 0
