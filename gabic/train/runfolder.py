"""Files of a training run folder, written atomically.

=======================  ====================================================================
``last.pt``              model, optimizer, aux_optimizer, scheduler (the plateau state),
                         state (:class:`~gabic.train.loop.TrainState`), rng, arch, config, lmbda
``weights.safetensors``  the current weights (what a new session resumes from, with state.json)
``best.safetensors``     the weights of the lowest validation loss
``state.json``           counters, lr, plateau, the run's arguments, the machine
``log.jsonl``            one line per optimizer step; ``val.jsonl`` one line per validation
``train_files.json``     the training files (:data:`gabic.train.data.FILE_LIST`)
``parent_card.json``     the model card of the shipped file the run started from
=======================  ====================================================================
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..models import ChannelwiseAttentionCodec
from ..zoo import restore_constants

#: Copy, in a run folder, of the model card of the shipped file the run started from.
PARENT_CARD = "parent_card.json"


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """``model``'s state dict as safetensors at ``path`` (written to a temporary file first)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> None:
    """``torch.save`` to ``path`` through a temporary file."""
    tmp = path.with_suffix(".tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)


def write_json(data: dict[str, Any], path: Path) -> None:
    """``data`` as indented JSON at ``path`` through a temporary file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def load_weights_into(model: ChannelwiseAttentionCodec, path: str | os.PathLike) -> list[str]:
    """Load a safetensors or ``.pt``/``.pth.tar`` state dict into ``model`` (strict, except that
    the gain units of a variable-rate model may be missing: a one-rate parent). Returns the
    missing gain keys."""
    path = Path(path)
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("model", state.get("state_dict", state))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    result = model.load_state_dict(restore_constants(model, state), strict=False)
    missing_gains = [k for k in result.missing_keys if k.startswith(("y_gain.", "z_gain."))]
    others = [k for k in result.missing_keys if k not in missing_gains]
    if others or result.unexpected_keys:
        raise ValueError(f"{path}: missing keys {others[:8]}, unexpected keys {result.unexpected_keys[:8]}")
    return missing_gains


def keep_parent_card(init_from: str | None, out: Path) -> None:
    """When ``init_from`` is a shipped file (a model card beside it), keep a copy of that card in
    ``out``: shipping this run later replaces the file and its card, and the lineage must survive."""
    if not init_from or (out / PARENT_CARD).exists():
        return
    card = Path(init_from).with_suffix(".json")
    if card.is_file():
        (out / PARENT_CARD).write_text(card.read_text())


def weights_checksum(model: torch.nn.Module) -> str:
    """SHA-256 over all parameters and buffers (to compare replicas)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
