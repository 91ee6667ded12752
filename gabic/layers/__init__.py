"""Building blocks of GABIC and Zou2022."""

from .attention_module import AttentionModule
from .gain import GainUnits
from .graph_window import GraphWindowBlock, KNNGraphAttention, edge_attribute_table, knn_in_windows
from .residual import ResidualUnit
from .window_attention import ShiftedWindowBlock, WindowAttention
from .windows import WindowGrid, window_merge, window_partition

__all__ = [
    "AttentionModule",
    "GainUnits",
    "GraphWindowBlock",
    "KNNGraphAttention",
    "ResidualUnit",
    "ShiftedWindowBlock",
    "WindowAttention",
    "WindowGrid",
    "edge_attribute_table",
    "knn_in_windows",
    "window_merge",
    "window_partition",
]
