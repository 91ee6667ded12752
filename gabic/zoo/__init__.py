"""Weights: the shipped models and their cards, our safetensors files, the authors' checkpoints.

:func:`load` gives a shipped model by name and quality, :func:`load_checkpoint` an authors'
``.pth.tar`` in the paper configuration, :func:`load_model` resolves either from a string.
Only safe formats are read. Imports only :mod:`gabic.models` below it.
"""

from .weights import (
    QUALITIES,
    SHIPPED,
    SHIPPED_WEIGHTS_DIR,
    CheckpointError,
    available,
    default_device,
    half_storage,
    load,
    load_checkpoint,
    load_model,
    load_weights,
    restore_constants,
    save_weights,
    shipped_path,
    weights_dir,
)

__all__ = [
    "QUALITIES",
    "SHIPPED",
    "SHIPPED_WEIGHTS_DIR",
    "CheckpointError",
    "available",
    "default_device",
    "half_storage",
    "load",
    "load_checkpoint",
    "load_model",
    "load_weights",
    "restore_constants",
    "save_weights",
    "shipped_path",
    "weights_dir",
]
