"""One image through one model, with everything there is to see recorded on the way.

- :mod:`~gabic.inspect.analysis`: :func:`analyze` runs the real codec (rANS bitstream, exact
  decode) and returns an :class:`Analysis`: rates, quality, bit maps and, per attention module,
  a :class:`BlockInspection`; :func:`spread_bits`, :func:`bit_difference`;
- :mod:`~gabic.inspect.blocks`: :class:`BlockInspection`, the kNN graph and attention weights of
  one attention module and the mapping between image pixels and graph nodes;
- :mod:`~gabic.inspect.recording`: :func:`record_attention`, forward hooks that record what the
  four window blocks compute while a context is open (nothing is set on the layers).

Returns data only; drawing is :mod:`gabic.viz`. The models given are never changed.
"""

from .analysis import Analysis, analyze, bit_difference, spread_bits
from .blocks import BlockInspection
from .recording import BlockRecord, record_attention

__all__ = [
    "Analysis",
    "BlockInspection",
    "BlockRecord",
    "analyze",
    "bit_difference",
    "record_attention",
    "spread_bits",
]
