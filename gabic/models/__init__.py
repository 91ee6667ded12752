"""GABIC and Zou2022 codecs."""

from .base import BLOCK_NAMES, BLOCK_STRIDES, ChannelwiseAttentionCodec
from .config import PAPER_CONFIG, SMALL_CONFIG, ModelConfig
from .gabic import ARCHITECTURES, GABIC, Zou2022, build_model

__all__ = [
    "ARCHITECTURES",
    "BLOCK_NAMES",
    "BLOCK_STRIDES",
    "GABIC",
    "PAPER_CONFIG",
    "SMALL_CONFIG",
    "ChannelwiseAttentionCodec",
    "ModelConfig",
    "Zou2022",
    "build_model",
]
