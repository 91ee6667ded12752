"""Weights: the shipped models and their cards, our safetensors files, the authors' checkpoints.

- :mod:`~gabic.zoo.shipped`: :func:`load` gives a shipped model by name and quality (a new,
  independent model every call), :func:`available` lists the qualities on disk,
  :func:`load_model` resolves a shipped name or a file;
- :mod:`~gabic.zoo.authors`: :func:`load_checkpoint` reads an authors' ``.pth.tar`` into the
  paper configuration;
- :mod:`~gabic.zoo.files`: safe reading and writing of weights (:func:`load_weights`,
  :func:`save_weights`, fp16 storage), :class:`CheckpointError`.

Only safe formats are read. Imports only :mod:`gabic.models` below it.
"""

from .authors import load_checkpoint
from .files import (
    CheckpointError,
    WeightsFile,
    default_device,
    half_storage,
    load_weights,
    read_weights,
    restore_constants,
    save_weights,
)
from .shipped import (
    ONE_RATE_FAMILIES,
    QUALITIES,
    SHIPPED,
    SHIPPED_WEIGHTS_DIR,
    VARIABLE_RATE_FAMILIES,
    available,
    is_variable_rate,
    load,
    load_model,
    shipped_path,
    variable_rate_path,
    weights_dir,
)

__all__ = [
    "ONE_RATE_FAMILIES",
    "VARIABLE_RATE_FAMILIES",
    "is_variable_rate",
    "variable_rate_path",
    "QUALITIES",
    "SHIPPED",
    "SHIPPED_WEIGHTS_DIR",
    "CheckpointError",
    "WeightsFile",
    "available",
    "default_device",
    "half_storage",
    "load",
    "load_checkpoint",
    "load_model",
    "load_weights",
    "read_weights",
    "restore_constants",
    "save_weights",
    "shipped_path",
    "weights_dir",
]
