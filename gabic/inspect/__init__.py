"""One image through one model, with everything there is to see recorded on the way.

- :mod:`~gabic.inspect.analysis`: :func:`analyze` runs the real codec (rANS bitstream, exact
  decode) and returns an :class:`Analysis`: rates, quality, bit maps and, per attention module,
  a :class:`BlockInspection`; :func:`spread_bits`, :func:`bit_difference`;
- :mod:`~gabic.inspect.blocks`: :class:`BlockInspection`, the kNN graph and attention weights of
  one attention module and the mapping between image pixels and graph nodes;
- :mod:`~gabic.inspect.recording`: :func:`record_attention`, forward hooks that record what the
  four window blocks compute while a context is open (nothing is set on the layers);
- :mod:`~gabic.inspect.block_inputs`: :class:`BlockInspections`, an analysis's graphs and
  attention computed from each block's recorded input when a view first reads them;
- :mod:`~gabic.inspect.entropy`: :func:`entropy_view`, y, ŷ, μ, σ and −log₂ p of every latent
  element (the encoder's own pass), bits per channel and slice, the max-entropy channel;
- :mod:`~gabic.inspect.progressive`: :func:`progressive_decoding`, reconstructions from the first
  s channel slices (all slices = the real decoder, bit for bit);
- :mod:`~gabic.inspect.graph_structure`: :func:`adjacency_shares`, the share of kNN edges that
  join adjacent cells against a random choice of k.

Returns data only; drawing is :mod:`gabic.viz`. The models given are never changed.
"""

from .analysis import Analysis, analyze, bit_difference, spread_bits
from .block_inputs import BlockInspections, record_block_inputs
from .blocks import BlockInspection
from .entropy import EntropyView, entropy_view
from .graph_structure import AdjacencyShare, adjacency_shares, adjacent_edge_share, random_adjacent_share
from .progressive import ProgressiveDecoding, decode_from_slices, progressive_decoding
from .recording import BlockRecord, record_attention

__all__ = [
    "AdjacencyShare",
    "Analysis",
    "BlockInspection",
    "BlockInspections",
    "BlockRecord",
    "EntropyView",
    "ProgressiveDecoding",
    "adjacency_shares",
    "adjacent_edge_share",
    "analyze",
    "bit_difference",
    "decode_from_slices",
    "entropy_view",
    "progressive_decoding",
    "random_adjacent_share",
    "record_attention",
    "record_block_inputs",
    "spread_bits",
]
