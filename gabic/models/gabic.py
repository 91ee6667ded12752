"""GABIC and its baseline Zou2022."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..layers import GraphWindowBlock, KNNGraphAttention, ShiftedWindowBlock
from .base import ChannelwiseAttentionCodec
from .config import PAPER_CONFIG, ModelConfig


class GABIC(ChannelwiseAttentionCodec):
    r"""GABIC: Graph-based Attention Block for Image Compression.

    G. Spadaro, A. Presta, E. Tartaglione, J. H. Giraldo, M. Grangetto,
    A. Fiandrotti, "GABIC: Graph-based Attention Block for Image Compression",
    ICIP 2024.

    The codec of :class:`ChannelwiseAttentionCodec` whose attention modules
    (G-WAM) use a :class:`~gabic.layers.GraphWindowBlock`: inside each window,
    every node attends only to its ``k`` nearest neighbours in feature space.

    .. code-block:: none

        G-WAM:  x ──┬── conv_a: 3×ResidualUnit ───────────────────────────┐
                    │                                                     ⊙ ── + x
                    └── conv_b: [kNN graph attention, 3×RU, 1×1] ─ σ ─────┘

    ``k`` may be changed after loading (:meth:`set_k`); ``config.k`` keeps the
    value the weights were trained with.
    """

    arch = "gabic"

    def window_block(self, channels: int, window: int) -> nn.Module:
        return GraphWindowBlock(channels, self.config.heads, window, self.config.k)

    def graph_operators(self) -> list[KNNGraphAttention]:
        return [block.conv for _, block in self.window_blocks()]

    @property
    def k(self) -> int:
        """The ``k`` used now by the graph blocks (``config.k`` is the trained one)."""
        return self.graph_operators()[0].k

    def set_k(self, k: int) -> None:
        """Use ``k`` neighbours per node in every graph block (1 .. smallest window²−1)."""
        largest = min(w * w for w in self.config.windows) - 1
        if not 1 <= int(k) <= largest:
            raise ValueError(f"k must be in 1..{largest}, got {k}")
        for operator in self.graph_operators():
            operator.k = int(k)

    def set_graph_implementation(self, implementation: str) -> None:
        """``"dense"`` (fast, default) or ``"pyg"`` (PyTorch Geometric reference)."""
        for operator in self.graph_operators():
            operator.implementation = implementation


class Zou2022(ChannelwiseAttentionCodec):
    r"""Window-attention CNN of Zou, Song, Zhang, "The Devil Is in the Details:
    Window-based Attention for Image Compression", CVPR 2022 (channel-wise
    entropy model variant), the baseline of the GABIC paper.

    The codec of :class:`ChannelwiseAttentionCodec` whose attention modules
    (WAM) use a :class:`~gabic.layers.ShiftedWindowBlock`: Swin-style
    self-attention in windows cyclically shifted by half a window, with a
    relative position bias.

    .. code-block:: none

        WAM:  x ──┬── conv_a: 3×ResidualUnit ────────────────────────────────┐
                  │                                                          ⊙ ── + x
                  └── conv_b: [shifted window attention, 3×RU, 1×1] ─ σ ─────┘
    """

    arch = "zou2022"

    def window_block(self, channels: int, window: int) -> nn.Module:
        return ShiftedWindowBlock(channels, self.config.heads, window)


ARCHITECTURES: dict[str, type[ChannelwiseAttentionCodec]] = {"gabic": GABIC, "zou2022": Zou2022}


def build_model(arch: str, config: ModelConfig = PAPER_CONFIG, *, model_id: str | None = None,
                quality: float = 0, card: dict[str, Any] | None = None) -> ChannelwiseAttentionCodec:  # fmt: skip
    """Instantiate ``"gabic"`` or ``"zou2022"`` with ``config`` and the metadata of its weights
    (``model_id``, ``quality``, ``card``; see :class:`ChannelwiseAttentionCodec`)."""
    try:
        cls = ARCHITECTURES[arch.lower()]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHITECTURES)}") from None
    return cls(config, model_id=model_id, quality=quality, card=card)
