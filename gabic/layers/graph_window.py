"""GABIC's graph window block: multi-head attention over a dynamic kNN graph
built inside each non-overlapping window (paper eqs. 5-7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax as scatter_softmax

from .windows import WindowGrid, WindowHeads, node_coordinates, pad_to_windows, window_merge, window_partition

GRAPH_IMPLEMENTATIONS = ("dense", "pyg")


def squared_feature_distances(nodes: Tensor) -> Tensor:
    r"""``(num_windows, n, n)`` squared Euclidean distances between the L2-normalised features of
    every pair of nodes of a window,
    :math:`\lVert\hat x_i\rVert^2 - 2\hat x_i^\top\hat x_j + \lVert\hat x_j\rVert^2` (the kNN's metric)."""
    with torch.no_grad():
        unit = F.normalize(nodes, p=2.0, dim=-1)
        square = (unit * unit).sum(dim=-1, keepdim=True)
        # the same float operations as square + (-2 * inner) + square^T, in place (no extra n x n buffers)
        return torch.matmul(unit, unit.transpose(1, 2)).mul_(-2).add_(square).add_(square.transpose(1, 2))


def _nearest(distance: Tensor, k: int) -> Tensor:
    """``(num_windows, n, k)`` indices of the ``k`` smallest entries of each row of ``distance``
    after the row's smallest (the node itself). Negates ``distance`` in place (no n x n copy on
    the codec's path)."""
    return torch.topk(distance.neg_(), k=k + 1, dim=-1).indices[..., 1:]


def knn_in_windows(nodes: Tensor, k: int) -> Tensor:
    r"""Indices of the ``k`` nearest neighbours of every node of every window.

    Distances are squared Euclidean distances between L2-normalised node
    features (:func:`squared_feature_distances`); the ``k + 1`` closest are
    taken with :func:`torch.topk` and the first (the node itself) is dropped,
    so there are no self loops.

    Args:
        nodes: ``(num_windows, n, C)`` node features.
        k: neighbours per node, ``1 <= k <= n - 1``.

    Returns:
        ``(num_windows, n, k)`` int64 indices of neighbours inside the window.
    """
    return _nearest(squared_feature_distances(nodes), k)


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

    @torch.no_grad()
    def explain(self, nodes: Tensor) -> dict[str, Tensor]:
        """The graph and attention :meth:`forward` computes for ``nodes``, edge by edge.

        The values are those of the dense path (the ``"pyg"`` path gives the same up to
        float rounding). With ``nodes`` ``(num_windows, n, C)`` and ``k = self.k``:

        - ``neighbours``: ``(num_windows, n, k)`` indices of each node's neighbours in its window;
        - ``alpha``: ``(num_windows, heads, n, k)`` attention weight of every edge (sums to 1 per node);
        - ``qk_score``, ``edge_score``: ``(num_windows, heads, n, k)`` the two parts of an edge's
          score, ``alpha = softmax(qk_score + edge_score)`` over the node's ``k`` edges;
        - ``edge_attribute``: ``(num_windows, n, k)`` ``((r_i - r_j) + (c_i - c_j))^2``;
        - ``feature_distance``: ``(num_windows, n, k)`` L2 distance of the normalised features
          the kNN was built on (nearest first).
        """
        n = nodes.shape[1]
        negated = squared_feature_distances(nodes)
        neighbours = _nearest(negated, self.k)  # negates the distances in place
        centre = torch.arange(n, device=nodes.device).view(1, n, 1)
        q, k, _ = self._split_heads(nodes)
        index = neighbours.unsqueeze(1).expand(-1, self.heads, -1, -1)
        qk_score = torch.matmul(q, k.transpose(-2, -1)).gather(-1, index)
        attribute = self.edge_table[centre, neighbours]
        edge_score = (self.edge_score_per_head().view(1, -1, 1, 1) * attribute.unsqueeze(1)).to(q.dtype)
        # the softmax over a node's k edges: forward's softmax over the masked row, without the n - k
        # zeros (taken over a transposed view: PyTorch's CPU softmax over a short last dimension is
        # ~15x slower than over an outer one)
        alpha = torch.softmax((qk_score + edge_score).transpose(-1, -2), dim=-2).transpose(-1, -2)
        # from the kNN's own distance matrix (so the order is the kNN's); a node that is its own
        # neighbour (only when features tie) is at distance 0 exactly
        distance = (
            negated.gather(-1, neighbours)
            .neg_()
            .clamp_(min=0)
            .sqrt_()
            .masked_fill_(neighbours == centre, 0.0)
        )
        return {
            "neighbours": neighbours,
            "feature_distance": distance,
            "alpha": alpha,
            "qk_score": qk_score,
            "edge_score": edge_score,
            "edge_attribute": attribute,
        }

    def _split_heads(self, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.split_heads(self.qkv(nodes))  # each (num_windows, heads, n, d)
        return q * self.scale, k, v

    def edge_bias(self) -> Tensor:
        """``(heads, n, n)``: the edge part of every head's score for every (centre, neighbour) pair."""
        return self.edge_score_per_head().view(-1, 1, 1) * self.edge_table

    @staticmethod
    def _not_edge(neighbours: Tensor, like: Tensor) -> Tensor:
        """``(num_windows, 1, n, n)`` additive mask: 0 on each node's ``k`` edges, ``-inf`` elsewhere
        (dtype and device of ``like``)."""
        num_windows, n, _ = neighbours.shape
        not_edge = torch.full((num_windows, 1, n, n), float("-inf"), dtype=like.dtype, device=like.device)
        return not_edge.scatter_(-1, neighbours.unsqueeze(1), 0.0)

    def _dense_weights(self, q: Tensor, k: Tensor, neighbours: Tensor) -> tuple[Tensor, Tensor]:
        """``(score, alpha)``, each ``(num_windows, heads, n, n)``: ``q·k`` of all pairs (``q`` scaled)
        and the softmax of ``score + edge bias`` over each node's edges (0 on other pairs)."""
        score = torch.matmul(q, k.transpose(-2, -1))
        bias = self.edge_bias().to(q.dtype)
        return score, torch.softmax((score + bias).add_(self._not_edge(neighbours, q)), dim=-1)

    def _propagate_dense(self, nodes: Tensor, neighbours: Tensor) -> Tensor:
        """Window attention restricted to the kNN graph, on dense ``(n, n)`` score matrices.

        The scores of all pairs come from one batched matmul (as in window
        attention); the edge part is a per-head bias ``attr_ij * sum(lin_edge)``,
        and pairs that are not edges get ``-inf``, so the softmax over a row is
        the softmax over the centre's ``k`` incoming edges. Eval mode always takes the fused
        ``scaled_dot_product_attention`` kernel (with or without autograd), so forward, the
        encoder and the decoder see the same numbers; training mode spells it out.
        """
        num_windows, n, channels = nodes.shape
        q, k, v = self._split_heads(nodes)  # each (nW, heads, n, d), q already scaled
        if self.training:
            _, alpha = self._dense_weights(q, k, neighbours)
            out = torch.matmul(alpha, v)  # (nW, heads, n, d)
        else:
            mask = self._not_edge(neighbours, q) + self.edge_bias().to(q.dtype)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
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

    def windows(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B * num_windows, window², C)``: the nodes of every window, after
        zero-padding to whole windows (what :attr:`conv` is given)."""
        return window_partition(pad_to_windows(x.permute(0, 2, 3, 1), self.window), self.window)

    def grid(self, height: int, width: int) -> WindowGrid:
        """Where the windows lie on a ``height x width`` input."""
        return WindowGrid.of(height, width, self.window)

    def explain(self, x: Tensor) -> dict[str, Tensor]:
        """:meth:`KNNGraphAttention.explain` of the windows of ``x`` (``(B, C, H, W)``)."""
        return self.conv.explain(self.windows(x))

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        grid = self.grid(height, width)
        out = self.conv(self.windows(x))
        out = window_merge(out, self.window, grid.padded_height, grid.padded_width)[:, :height, :width]
        return x + out.permute(0, 3, 1, 2)
