"""GABIC's graph window block: multi-head attention over a dynamic kNN graph
built inside each non-overlapping window (paper eqs. 5-7)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax as scatter_softmax

from .windows import (
    WindowHeads,
    grid_record,
    node_coordinates,
    pad_to_windows,
    window_merge,
    window_partition,
)

GRAPH_IMPLEMENTATIONS = ("dense", "pyg")


def knn_in_windows(nodes: Tensor, k: int) -> Tensor:
    r"""Indices of the ``k`` nearest neighbours of every node of every window.

    Distances are squared Euclidean distances between L2-normalised node
    features, :math:`\lVert\hat x_i\rVert^2 - 2\hat x_i^\top\hat x_j + \lVert\hat x_j\rVert^2`;
    the ``k + 1`` closest are taken with :func:`torch.topk` and the first
    (the node itself) is dropped, so there are no self loops.

    Args:
        nodes: ``(num_windows, n, C)`` node features.
        k: neighbours per node, ``1 <= k <= n - 1``.

    Returns:
        ``(num_windows, n, k)`` int64 indices of neighbours inside the window.
    """
    with torch.no_grad():
        unit = F.normalize(nodes, p=2.0, dim=-1)
        square = (unit * unit).sum(dim=-1, keepdim=True)
        # the same float operations as square + (-2 * inner) + square^T, in place (no extra n x n buffers)
        distance = torch.matmul(unit, unit.transpose(1, 2)).mul_(-2).add_(square).add_(square.transpose(1, 2))
        return torch.topk(distance.neg_(), k=k + 1, dim=-1).indices[..., 1:]


def edge_attribute_table(window: int, device: torch.device | None = None) -> Tensor:
    r"""``(n, n)`` edge attribute for every centre ``i`` (row) and neighbour ``j`` (column):
    :math:`((r_i - r_j) + (c_i - c_j))^2` (the sum of the two offsets, squared)."""
    coords = node_coordinates(window, device)
    offset = coords[:, None, :] - coords[None, :, :]
    return offset.sum(dim=-1).pow(2).to(torch.float32)


class _EdgeAttentionPropagation(MessagePassing):
    """PyTorch Geometric message passing used by the reference path."""

    def __init__(self) -> None:
        super().__init__(aggr="add", node_dim=0)

    def forward(self, edge_index: Tensor, q: Tensor, k: Tensor, v: Tensor, edge_embedding: Tensor) -> Tensor:
        return self.propagate(edge_index, q=q, k=k, v=v, edge_embedding=edge_embedding)

    def message(
        self,
        q_i: Tensor,
        k_j: Tensor,
        v_j: Tensor,
        edge_embedding: Tensor,
        index: Tensor,
        ptr: Tensor | None,
        size_i: int | None,
    ) -> Tensor:
        score = (q_i * k_j + edge_embedding).sum(dim=-1)
        alpha = scatter_softmax(score, index, ptr, size_i)
        return v_j * alpha.unsqueeze(-1)


class KNNGraphAttention(WindowHeads):
    r"""Multi-head attention of every node over its k nearest neighbours in its window.

    For a centre node :math:`i` with neighbours :math:`\mathcal N_k(i)` (kNN in
    L2-normalised feature space, no self loop) and each head :math:`h`:

    .. math::
        s^h_{ij} = \sum_{c \in h} \left(\tfrac{q_{ic}}{\sqrt{d}}\, k_{jc} + e_c\, a_{ij}\right),
        \qquad a_{ij} = \big((r_i - r_j) + (c_i - c_j)\big)^2

    .. math::
        \alpha^h_{ij} = \operatorname{softmax}_{j \in \mathcal N_k(i)} s^h_{ij},\qquad
        x'_i = W_\text{proj} \big\Vert_h \sum_{j \in \mathcal N_k(i)} \alpha^h_{ij} v^h_j

    with ``q, k, v = qkv(x)`` and ``e = lin_edge(1)``. Because ``lin_edge`` has
    no bias, the edge part of a head's score is ``a_ij * sum_{c in h} e_c``.

    Two implementations give the same numbers: ``"dense"`` (default) is a
    window attention over all pairs of each window with an additive edge bias
    and ``-inf`` outside each node's ``k`` neighbours, batched over all
    windows; ``"pyg"`` builds one graph over all windows and runs a PyTorch
    Geometric :class:`~torch_geometric.nn.MessagePassing` with
    :func:`torch_geometric.utils.softmax`.

    Shape: ``(num_windows, n, C) -> (num_windows, n, C)`` with ``n = window**2``.
    """

    def __init__(self, dim: int, heads: int, window: int, k: int, implementation: str = "dense") -> None:
        super().__init__(dim, heads, window)
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)
        self.lin_edge = nn.Linear(1, dim, bias=False)
        self.register_buffer("edge_table", edge_attribute_table(window), persistent=False)
        self.propagation = _EdgeAttentionPropagation()
        self.k = k
        self.implementation = implementation
        #: When True, the dense path keeps the graph and attention of the last call in ``last``.
        self.record = False
        self.last: dict[str, Tensor] | None = None

    @property
    def k(self) -> int:
        return self._k

    @k.setter
    def k(self, value: int) -> None:
        nodes = self.window * self.window
        if not 1 <= int(value) <= nodes - 1:
            raise ValueError(f"k must be in 1..{nodes - 1} for window {self.window}, got {value}")
        self._k = int(value)

    @property
    def implementation(self) -> str:
        return self._implementation

    @implementation.setter
    def implementation(self, value: str) -> None:
        if value not in GRAPH_IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {GRAPH_IMPLEMENTATIONS}, got {value!r}")
        self._implementation = value

    def edge_score_per_head(self) -> Tensor:
        """``(heads,)``: the edge part of a head's score per unit of edge attribute."""
        return self.lin_edge.weight.view(self.heads, self.head_dim).sum(dim=-1)

    def forward(self, nodes: Tensor) -> Tensor:
        neighbours = knn_in_windows(nodes, self.k)
        if self.implementation == "pyg":
            out = self._propagate_pyg(nodes, neighbours)
        else:
            out = self._propagate_dense(nodes, neighbours)
        return self.proj(out)

    def _split_heads(self, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        num_windows, n, _ = nodes.shape
        qkv = self.qkv(nodes).view(num_windows, n, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (num_windows, heads, n, d)
        return q * self.scale, k, v

    def edge_bias(self) -> Tensor:
        """``(heads, n, n)``: the edge part of every head's score for every (centre, neighbour) pair."""
        return self.edge_score_per_head().view(-1, 1, 1) * self.edge_table

    def _propagate_dense(self, nodes: Tensor, neighbours: Tensor) -> Tensor:
        """Window attention restricted to the kNN graph, on dense ``(n, n)`` score matrices.

        The scores of all pairs come from one batched matmul (as in window
        attention); the edge part is a per-head bias ``attr_ij * sum(lin_edge)``,
        and pairs that are not edges get ``-inf``, so the softmax over a row is
        the softmax over the centre's ``k`` incoming edges. In eval mode the
        fused ``scaled_dot_product_attention`` kernel does the same computation;
        recording then computes the weights beside it, so the output is
        identical with and without recording or autograd.
        """
        num_windows, n, channels = nodes.shape
        q, k, v = self._split_heads(nodes)  # each (nW, heads, n, d), q already scaled
        not_edge = torch.full((num_windows, 1, n, n), float("-inf"), dtype=q.dtype, device=q.device)
        not_edge.scatter_(-1, neighbours.unsqueeze(1), 0.0)
        bias = self.edge_bias().to(q.dtype)
        # Eval mode always takes the fused kernel (with or without autograd, recording or not),
        # so forward, the encoder, the decoder and the inspection all see the same numbers.
        fused = not self.training
        if fused:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=not_edge + bias, scale=1.0)
        if not fused or self.record:
            score = torch.matmul(q, k.transpose(-2, -1))  # (nW, heads, n, n)
            alpha_full = torch.softmax((score + bias).add_(not_edge), dim=-1)
        if not fused:
            out = torch.matmul(alpha_full, v)  # (nW, heads, n, d)
        if self.record:
            kk = neighbours.shape[-1]
            index = neighbours.unsqueeze(1).expand(-1, self.heads, -1, -1)
            qk_score = score.detach().gather(-1, index)
            alpha = alpha_full.detach().gather(-1, index)
            attribute = self.edge_table[torch.arange(n, device=nodes.device)[:, None], neighbours]
            edge_score = self.edge_score_per_head().view(1, -1, 1, 1) * attribute.unsqueeze(1)
            unit = F.normalize(nodes.detach(), p=2.0, dim=-1)
            unit_nb = unit.gather(1, neighbours.reshape(num_windows, n * kk, 1).expand(-1, -1, channels))
            distance = (unit.unsqueeze(2) - unit_nb.view(num_windows, n, kk, channels)).norm(dim=-1)
            self.last = {
                "neighbours": neighbours.detach(),
                "feature_distance": distance,
                "alpha": alpha,
                "qk_score": qk_score,
                "edge_score": edge_score.detach().expand_as(alpha),
                "edge_attribute": attribute.detach(),
            }
        return out.transpose(1, 2).reshape(num_windows, n, channels)

    def _propagate_pyg(self, nodes: Tensor, neighbours: Tensor) -> Tensor:
        num_windows, n, channels = nodes.shape
        kk = neighbours.shape[-1]
        q, k, v = (
            t.transpose(1, 2).reshape(num_windows * n, self.heads, self.head_dim)
            for t in self._split_heads(nodes)
        )
        offset = torch.arange(num_windows, device=nodes.device).view(-1, 1, 1) * n
        centre = torch.arange(n, device=nodes.device).view(1, n, 1).expand(num_windows, n, kk)
        source = (neighbours + offset).reshape(-1)
        target = (centre + offset).reshape(-1)
        attribute = self.edge_table[centre.reshape(-1), neighbours.reshape(-1)].unsqueeze(-1)
        edge_embedding = self.lin_edge(attribute).view(-1, self.heads, self.head_dim)
        out = self.propagation(torch.stack([source, target]), q, k, v, edge_embedding)
        return out.reshape(num_windows, n, channels)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.heads}, window={self.window}, k={self.k}, "
            f"implementation={self.implementation!r}"
        )


class GraphWindowBlock(nn.Module):
    """GABIC's window block: pad to whole windows, run :class:`KNNGraphAttention`
    in every window, crop back, add the input (residual inside the block).

    Shape: ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, dim: int, heads: int, window: int, k: int) -> None:
        super().__init__()
        self.window = window
        self.conv = KNNGraphAttention(dim, heads, window, k)
        self.last_grid: dict[str, Any] | None = None

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        tokens = pad_to_windows(x.permute(0, 2, 3, 1), self.window)
        padded_h, padded_w = tokens.shape[1:3]
        out = self.conv(window_partition(tokens, self.window))
        if self.conv.record:
            self.last_grid = grid_record(height, width, tokens)
        out = window_merge(out, self.window, padded_h, padded_w)[:, :height, :width]
        return x + out.permute(0, 3, 1, 2)
