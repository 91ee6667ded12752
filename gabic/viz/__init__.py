"""Every figure, overlay and report, drawn from the data of :mod:`gabic.inspect` and
:mod:`gabic.eval`; used alike by the app, the notebooks and ``python -m gabic bdrate --plot``.

A view is a function from data to a figure, with no state:

- :mod:`.maps`: heat-map and image grids, the one pooling rule (:func:`pool_mean`), bit maps
  of two models and their difference;
- :mod:`.rd`: rate–distortion curves, the k sweep, writing a figure to HTML/PNG;
- :mod:`.attention`: the neighbour table, score anatomy and all heads around one clicked point;
- :mod:`.pictures`: the views redrawn on every scrub and click, as plain pictures: the bit maps
  in the photo and the attention over the clicked node's window;
- :mod:`.overlays`: one node's graph drawn on the image (Pillow);
- :mod:`.report`: the metrics table and the self-contained HTML report;
- :mod:`.entropy`: the entropy model (bits per channel and slice, a channel's y/ŷ/μ/σ/−log₂ p
  maps, the max-entropy channel side by side), progressive decoding, the adjacent-edge share;
- :mod:`.window_graph`: one attention window of GABIC as a node-link graph over its image patch;
- :mod:`.notebook`: helpers of the companion notebooks (photos, fast mode, weights check).

Plotly is imported when a figure is first drawn.
"""

from .attention import (
    all_heads,
    all_heads_figure,
    anatomy_figure,
    neighbour_rows,
    neighbour_table,
    node_summary,
    score_anatomy,
)
from .common import ARCH_NAMES, model_label, png_data_uri
from .entropy import (
    adjacency_figure,
    channel_bits_figure,
    channel_maps_figure,
    max_entropy_figure,
    progressive_curve_figure,
    progressive_strip_figure,
    robust_range,
    slice_bits_figure,
)
from .maps import (
    BitMaps,
    bit_maps,
    bit_summary,
    bits_at,
    images_figure,
    maps_figure,
    part_map,
    pool_mean,
)
from .overlays import display_scale, graph_overlay, inspector_image
from .pictures import bits_picture, window_attention_picture
from .rd import k_sweep_figure, points_to_curves, rd_figure, save_figure
from .report import METRIC_HEADERS, html_report, metrics_rows
from .window_graph import window_graph_figure

__all__ = [
    "ARCH_NAMES",
    "METRIC_HEADERS",
    "BitMaps",
    "adjacency_figure",
    "all_heads",
    "all_heads_figure",
    "anatomy_figure",
    "bit_maps",
    "bit_summary",
    "bits_at",
    "bits_picture",
    "window_attention_picture",
    "channel_bits_figure",
    "channel_maps_figure",
    "display_scale",
    "graph_overlay",
    "html_report",
    "images_figure",
    "inspector_image",
    "k_sweep_figure",
    "maps_figure",
    "max_entropy_figure",
    "metrics_rows",
    "model_label",
    "neighbour_rows",
    "neighbour_table",
    "node_summary",
    "part_map",
    "png_data_uri",
    "points_to_curves",
    "pool_mean",
    "progressive_curve_figure",
    "progressive_strip_figure",
    "rd_figure",
    "robust_range",
    "save_figure",
    "score_anatomy",
    "slice_bits_figure",
    "window_graph_figure",
]
