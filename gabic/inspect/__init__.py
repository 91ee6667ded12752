"""One image through one model, with everything there is to see recorded on the way.

:func:`analyze` runs the real codec (rANS bitstream, exact decode) and returns an
:class:`Analysis`: rates, quality, bit maps and, per attention module, the kNN graph and
attention weights (:class:`BlockInspection`). Returns data only; drawing is :mod:`gabic.viz`.
"""

from .analysis import Analysis, BlockInspection, analyze, bit_difference, spread_bits

__all__ = ["Analysis", "BlockInspection", "analyze", "bit_difference", "spread_bits"]
