"""Forward hooks that record what the four window blocks compute, while a context is open.

Nothing is set on the model or its layers: the hooks call the blocks' pure ``explain`` and
``grid`` methods on the input each block receives and keep the results in a dict that belongs
to the recording. Two recordings on one model (e.g. two threads) do not see each other's calls.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ..layers import WindowGrid
from ..models import ChannelwiseAttentionCodec


@dataclass(frozen=True)
class BlockRecord:
    """One call of a window block.

    Attributes:
        explanation: the block's ``explain(x)``: for GABIC's graph block ``neighbours``,
            ``alpha``, ``qk_score``, ``edge_score``, ``edge_attribute``, ``feature_distance``
            (see :meth:`gabic.layers.KNNGraphAttention.explain`); for Zou2022's block
            ``alpha`` ``(num_windows, heads, n, n)``.
        grid: where the block's windows lie on its input feature map.
    """

    explanation: dict[str, Tensor]
    grid: WindowGrid


@contextlib.contextmanager
def record_attention(model: ChannelwiseAttentionCodec) -> Iterator[dict[str, BlockRecord]]:
    """Record the graph or attention of the four window blocks of ``model`` while open.

    Yields a dict ``{block name: BlockRecord}`` (names as in
    :data:`gabic.models.BLOCK_NAMES`) that fills as the blocks run; a block called again
    replaces its entry. The encoder blocks run in ``compress``, the decoder blocks in
    ``decompress``. Only calls made from the thread that opened the context, on this very
    model, are recorded. The hooks are removed on exit, also after an error.

    Example::

        with record_attention(model) as records:
            model(x)
        records["encoder 1/4"].explanation["alpha"]
    """
    owner = threading.get_ident()
    records: dict[str, BlockRecord] = {}
    handles = []
    try:
        for name, block in model.window_blocks():
            handles.append(block.register_forward_hook(_recorder(name, block, owner, records)))
        yield records
    finally:
        for handle in handles:
            handle.remove()


def _recorder(name: str, block: nn.Module, owner: int, records: dict[str, BlockRecord]
              ) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:  # fmt: skip
    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if module is block and threading.get_ident() == owner:
            (x,) = args
            records[name] = BlockRecord(block.explain(x), block.grid(*x.shape[-2:]))

    return hook


__all__ = ["BlockRecord", "record_attention"]
