"""Learning-rate schedule as pure functions.

The rate of optimizer step ``s`` is ``lr_at(s, ...) · plateau.scale``:

- :func:`lr_at` — a linear warm-up over ``warmup`` steps from ``warmup_start``, then the base
  rate, times ``final_decay_factor`` over the last ``final_decay`` fraction of the steps;
- :func:`plateau_step` — the plateau decay on the validation loss (the paper's: ×0.3 after 10
  epochs without gain), the rule of :class:`torch.optim.lr_scheduler.ReduceLROnPlateau` in
  its ``min`` / ``rel`` mode without cool-down, as a function from one state to the next
  (torch's rule of ignoring decays smaller than 1e-8 is left out: the floor ``--min-lr``
  stops the decay first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

#: Relative improvement a validation loss needs to count as a gain (torch's default).
PLATEAU_THRESHOLD = 1e-4


def in_final_decay(step: int, total_steps: int, final_decay: float) -> bool:
    """Whether 0-based ``step`` lies in the last ``final_decay`` fraction of ``total_steps``."""
    return final_decay > 0 and step >= (1 - final_decay) * total_steps


def lr_at(step: int, *, lr: float, warmup: int, total_steps: int, warmup_start: int = 0,
          final_decay: float = 0.0, final_decay_factor: float = 0.1,
          final_decay_done: bool = False) -> float:  # fmt: skip
    """Learning rate of 0-based optimizer ``step`` before the plateau decay.

    ``lr · min(1, (step − warmup_start + 1) / warmup)``, times ``final_decay_factor`` once
    ``step`` is in the last ``final_decay`` fraction of ``total_steps`` (or ``final_decay_done``:
    the decay stays once applied, even if a larger step budget arrives later).
    """
    ramp = 1.0 if warmup <= 0 else min(1.0, max(0, step - warmup_start + 1) / warmup)
    decayed = final_decay_done or in_final_decay(step, total_steps, final_decay)
    return lr * ramp * (final_decay_factor if decayed else 1.0)


@dataclass(frozen=True)
class Plateau:
    """State of the plateau decay: best validation loss so far, validations since it, and the
    factor the rate stands at (``factor ** decays``, floored at ``min_lr / lr``)."""

    best: float = math.inf
    bad_validations: int = 0
    scale: float = 1.0

    def to_dict(self) -> dict[str, float]:
        return {"best": self.best, "bad_validations": self.bad_validations, "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict[str, Any], scale_if_missing: float = 1.0) -> Plateau:
        """Read :meth:`to_dict`, or the ``state_dict()`` of a ``ReduceLROnPlateau`` (run folders
        written before this module; their scale is not stored and comes as ``scale_if_missing``)."""
        if "num_bad_epochs" in data:
            return cls(float(data["best"]), int(data["num_bad_epochs"]), scale_if_missing)
        return cls(float(data["best"]), int(data["bad_validations"]), float(data["scale"]))


def plateau_step(plateau: Plateau, loss: float, *, factor: float, patience: int,
                 min_scale: float = 0.0, threshold: float = PLATEAU_THRESHOLD) -> Plateau:  # fmt: skip
    """The plateau state after one more validation with ``loss``: a loss below
    ``best · (1 − threshold)`` is a gain; the ``patience + 1``-th validation in a row without
    one multiplies the scale by ``factor`` (not below ``min_scale``) and starts counting again."""
    if loss < plateau.best * (1 - threshold):
        return replace(plateau, best=loss, bad_validations=0)
    bad = plateau.bad_validations + 1
    if bad > patience:
        return replace(plateau, bad_validations=0, scale=max(plateau.scale * factor, min_scale))
    return replace(plateau, bad_validations=bad)


def plateau_lrs(losses: Iterable[float], *, lr: float, factor: float, patience: int,
                min_lr: float = 0.0) -> list[float]:  # fmt: skip
    """Learning rate in force after each validation loss of ``losses`` (one per epoch in the
    paper's recipe: ``lr=1e-4, factor=0.3, patience=10``)."""
    plateau, rates = Plateau(), []
    for loss in losses:
        plateau = plateau_step(plateau, loss, factor=factor, patience=patience, min_scale=min_lr / lr)
        rates.append(lr * plateau.scale)
    return rates
