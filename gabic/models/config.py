"""Width configuration shared by GABIC and Zou2022."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Widths of the codec. The defaults are the paper configuration.

    Attributes:
        N: channels of the analysis/synthesis transforms.
        M: channels of the latent ``y``.
        hyper_channels: channels of the hyper-latent ``z``.
        num_slices: channel slices of the autoregressive entropy model.
        max_support_slices: how many decoded slices a slice may condition on.
        heads: attention heads of every window block.
        windows: window size of the first (1/4 scale) and second (1/16 scale) module.
        k: neighbours per node in GABIC's graph blocks (the value trained with).
        slice_widths: hidden widths of the slice transforms; ``None`` scales the
            paper's (224, 176, 128, 64) in proportion to ``M / 320``.
        rate_levels: 0 for a model trained at one λ (the paper's); ``L >= 2`` adds gain
            units (:class:`~gabic.layers.GainUnits`) for ``L`` trained λ, so one model covers
            the continuous quality range ``1..L``.
    """

    N: int = 192
    M: int = 320
    hyper_channels: int = 192
    num_slices: int = 10
    max_support_slices: int = 5
    heads: int = 8
    windows: tuple[int, int] = (8, 4)
    k: int = 9
    slice_widths: tuple[int, ...] | None = field(default=None)
    rate_levels: int = 0

    def __post_init__(self) -> None:
        if self.M % self.num_slices:
            raise ValueError(f"M={self.M} must be divisible by num_slices={self.num_slices}")
        for channels in (self.N, self.M):
            if channels % self.heads:
                raise ValueError(f"{channels} channels are not divisible by {self.heads} heads")
        if self.rate_levels == 1 or self.rate_levels < 0:
            raise ValueError(f"rate_levels must be 0 (one rate) or at least 2, got {self.rate_levels}")
        object.__setattr__(self, "windows", tuple(int(w) for w in self.windows))
        if self.slice_widths is not None:
            object.__setattr__(self, "slice_widths", tuple(int(w) for w in self.slice_widths))

    @property
    def variable_rate(self) -> bool:
        """True when the model has gain units (one model, continuous quality)."""
        return self.rate_levels > 0

    @property
    def slice_channels(self) -> int:
        return self.M // self.num_slices

    def resolved_slice_widths(self) -> tuple[int, ...]:
        if self.slice_widths is not None:
            return self.slice_widths
        return tuple(max(self.slice_channels, round(w * self.M / 320)) for w in (224, 176, 128, 64))

    def hyper_widths(self) -> tuple[int, int, int, int, int]:
        """Channels from ``M`` down to ``hyper_channels`` in four equal steps (320..192 in the paper)."""
        step = (self.M - self.hyper_channels) / 4
        return tuple(round(self.M - i * step) for i in range(5))  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["windows"] = list(self.windows)
        if self.slice_widths is not None:
            data["slice_widths"] = list(self.slice_widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        values = dict(data)
        if "windows" in values:
            values["windows"] = tuple(values["windows"])
        if values.get("slice_widths") is not None:
            values["slice_widths"] = tuple(values["slice_widths"])
        return cls(**values)

    def with_rate_levels(self, levels: int) -> ModelConfig:
        """This configuration with ``rate_levels=levels``."""
        return ModelConfig.from_dict({**self.to_dict(), "rate_levels": levels})


def rounded_quality(quality: float, levels: int) -> float:
    """A variable-rate quality rounded to hundredths (what containers record, so encoder and decoder
    use the same gains) if it lies in ``1..levels``, else ``ValueError``."""
    value = round(float(quality) * 100) / 100
    if not 1 <= value <= levels:
        raise ValueError(f"quality must be in 1..{levels}, got {quality}")
    return value


PAPER_CONFIG = ModelConfig()
#: The configuration of the weights this project trains and ships (issue 3).
SMALL_CONFIG = ModelConfig(
    N=64, M=96, hyper_channels=64, num_slices=8, max_support_slices=4, slice_widths=(48, 40, 32, 16)
)
#: The configurations known by name (``--config`` of train and bench).
NAMED_CONFIGS: dict[str, ModelConfig] = {"paper": PAPER_CONFIG, "small": SMALL_CONFIG}


def resolve_config(name: str) -> ModelConfig:
    """``"paper"``, ``"small"`` (the shipped one) or a JSON file of :class:`ModelConfig` fields."""
    if name in NAMED_CONFIGS:
        return NAMED_CONFIGS[name]
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        return ModelConfig.from_dict(json.loads(path.read_text()))
    raise ValueError(f"unknown config {name!r}; use paper, small or a JSON file of ModelConfig fields")
