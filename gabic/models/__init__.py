"""GABIC and Zou2022 codecs."""

from .base import BLOCK_NAMES, BLOCK_STRIDES, ChannelwiseAttentionCodec
from .cells import fill_uncoded_cells
from .config import NAMED_CONFIGS, PAPER_CONFIG, SMALL_CONFIG, ModelConfig, resolve_config, rounded_quality
from .gabic import ARCHITECTURES, GABIC, Zou2022, build_model

__all__ = [
    "ARCHITECTURES",
    "BLOCK_NAMES",
    "BLOCK_STRIDES",
    "GABIC",
    "NAMED_CONFIGS",
    "PAPER_CONFIG",
    "SMALL_CONFIG",
    "ChannelwiseAttentionCodec",
    "ModelConfig",
    "Zou2022",
    "build_model",
    "fill_uncoded_cells",
    "resolve_config",
    "rounded_quality",
]
