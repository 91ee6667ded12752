"""The graphs and attention of an analysis, computed when a view first asks for them.

A forward pass through a window block costs the same whether anyone looks at its attention or
not; recording the attention (:meth:`explain`) costs that block's attention once more. A view
shows one block at a time, so :func:`analyze` keeps only what each block was given (its input
feature map, ``(1, C, h, w)``: 3 MB for the 1/4 block of a 512×384 photo) and a copy of the
block's few weights, and :class:`BlockInspections` runs ``explain`` for a block the first time it
is read. The values are those :func:`~gabic.inspect.record_attention` records during the pass.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator, Mapping

import torch
from torch import Tensor, nn

from ..layers import GraphWindowBlock
from ..models import BLOCK_STRIDES, ChannelwiseAttentionCodec
from .blocks import BlockInspection


@contextlib.contextmanager
def record_block_inputs(model: ChannelwiseAttentionCodec) -> Iterator[dict[str, Tensor]]:
    """While open, keep the input of each of the four window blocks of ``model``.

    Yields ``{block name: (B, C, h, w) tensor}`` that fills as the blocks run (encoder blocks in
    ``compress``, decoder blocks in ``decompress``). Only calls from the thread that opened the
    context are kept; the hooks are removed on exit, also after an error.
    """
    owner = threading.get_ident()
    inputs: dict[str, Tensor] = {}
    handles = []

    def keeper(name: str, block: nn.Module):
        def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
            if module is block and threading.get_ident() == owner:
                inputs[name] = args[0].detach().clone()  # later layers may work in place

        return hook

    try:
        for name, block in model.window_blocks():
            handles.append(block.register_forward_pre_hook(keeper(name, block)))
        yield inputs
    finally:
        for handle in handles:
            handle.remove()


def inspect_block(name: str, block: nn.Module, x: Tensor, pad: tuple[int, int, int, int],
                  half: bool) -> BlockInspection:  # fmt: skip
    """:class:`BlockInspection` of ``block`` (named ``name``) on its input ``x`` ``(1, C, h, w)``;
    ``pad``: the image padding ``(left, right, top, bottom)``; ``half``: keep window attention in fp16."""
    with torch.no_grad():
        found = block.explain(x)
    grid = block.grid(*x.shape[-2:])
    common = dict(
        name=name, window=block.window, stride=BLOCK_STRIDES[name],
        grid_height=grid.height, grid_width=grid.width,
        padded_grid_height=grid.padded_height, padded_grid_width=grid.padded_width,
        shift=grid.shift, pad_top=pad[2], pad_left=pad[0],
    )  # fmt: skip
    if isinstance(block, GraphWindowBlock):
        return BlockInspection(kind="graph", heads=block.conv.heads, k=block.conv.k,
                               alpha=found["alpha"], neighbours=found["neighbours"],
                               qk_score=found["qk_score"], edge_score=found["edge_score"],
                               edge_attribute=found["edge_attribute"],
                               feature_distance=found["feature_distance"], **common)  # fmt: skip
    alpha = found["alpha"]
    return BlockInspection(kind="window", heads=block.attn.heads, alpha=alpha.half() if half else alpha,
                           **common)  # fmt: skip


def _explained_bytes(block: nn.Module, x: Tensor, half: bool) -> int:
    """Bytes :func:`inspect_block` will hold for ``block`` on ``x`` (without computing it)."""
    grid = block.grid(*x.shape[-2:])
    windows = x.shape[0] * (grid.padded_height // block.window) * (grid.padded_width // block.window)
    nodes = block.window**2
    if isinstance(block, GraphWindowBlock):
        heads, k = block.conv.heads, block.conv.k
        # neighbours (int64), edge attribute and distance (fp32); alpha, qk and edge score (fp32)
        return windows * nodes * k * (8 + 4 + 4 + 3 * 4 * heads)
    return windows * block.attn.heads * nodes * nodes * (2 if half else 4)


class BlockInspections(Mapping[str, BlockInspection]):
    """``{block name: BlockInspection}`` of one analysis, each computed on first access.

    Built from what each block was given (:func:`record_block_inputs`) and a copy of the block
    (a few kB of weights; the model it came from is not kept). Reading a block twice, or from
    two threads, computes it once.
    """

    def __init__(self, blocks: Mapping[str, nn.Module], inputs: Mapping[str, Tensor],
                 pad: tuple[int, int, int, int], half: bool) -> None:  # fmt: skip
        missing = [name for name in blocks if name not in inputs]
        if missing:
            raise ValueError(f"no recorded input for blocks {missing}")
        self._blocks = {name: copy.deepcopy(block) for name, block in blocks.items()}
        self._inputs = {name: inputs[name] for name in blocks}
        self._pad = pad
        self._half = half
        self._done: dict[str, BlockInspection] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> BlockInspection:
        if name not in self._inputs:
            raise KeyError(name)
        with self._lock:
            found = self._done.get(name)
            if found is None:
                found = inspect_block(name, self._blocks[name], self._inputs[name], self._pad, self._half)
                self._done[name] = found
            return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._inputs)

    def __len__(self) -> int:
        return len(self._inputs)

    def computed(self) -> list[str]:
        """Names of the blocks whose inspection exists already."""
        with self._lock:
            return list(self._done)

    def nbytes(self, all_blocks: bool = False) -> int:
        """Memory held now: the recorded inputs, the block copies and the inspections computed so
        far; with ``all_blocks``, once every block is computed (estimated from the shapes).
        Reading this computes nothing."""
        with self._lock:
            done = set(self._done)
        total = 0
        for name, block in self._blocks.items():
            x = self._inputs[name]
            total += x.numel() * x.element_size()
            total += sum(p.numel() * p.element_size() for p in block.parameters())
            if all_blocks or name in done:
                total += _explained_bytes(block, x, self._half)
        return total


__all__ = ["BlockInspections", "inspect_block", "record_block_inputs"]
