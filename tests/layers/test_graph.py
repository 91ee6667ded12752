"""GABIC's graph window block: kNN, edge attributes, the two implementations, and the
equivalence with dense window attention at k = window² − 1 (paper eqs. 8-12)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_CONFIG

from gabic.layers import GraphWindowBlock, KNNGraphAttention, edge_attribute_table, knn_in_windows
from gabic.layers.windows import pad_to_windows, window_merge, window_partition
from gabic.models import GABIC


def _block(dim: int = 16, heads: int = 2, window: int = 4, k: int = 5, seed: int = 0) -> GraphWindowBlock:
    torch.manual_seed(seed)
    block = GraphWindowBlock(dim, heads, window, k)
    with torch.no_grad():  # make the edge term matter
        block.conv.lin_edge.weight.normal_(0, 0.3)
    return block


@pytest.mark.parametrize(
    ("window", "k", "size"),
    [(4, 1, (8, 8)), (4, 5, (9, 13)), (4, 15, (5, 7)), (8, 1, (16, 8)), (8, 9, (11, 19)), (8, 63, (8, 9))],
)
def test_dense_and_pyg_paths_agree(window, k, size):
    block = _block(window=window, k=k, seed=k)
    x = torch.randn(2, 16, *size)
    with torch.no_grad():
        dense = block(x)
        block.conv.implementation = "pyg"
        pyg = block(x)
    assert dense.shape == x.shape
    torch.testing.assert_close(dense, pyg, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(dense, x)


def test_model_level_implementation_switch():
    torch.manual_seed(0)
    model = GABIC(TINY_CONFIG).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        dense = model(x)["x_hat"]
        model.set_graph_implementation("pyg")
        pyg = model(x)["x_hat"]
    torch.testing.assert_close(dense, pyg, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        model.set_graph_implementation("sparse")


@pytest.mark.parametrize("implementation", ["dense", "pyg"])
def test_gradients_flow_through_both_paths(implementation):
    block = _block(window=4, k=3)
    block.conv.implementation = implementation
    x = torch.randn(1, 16, 6, 10, requires_grad=True)
    block(x).square().sum().backward()
    for name in ("qkv", "proj", "lin_edge"):
        grad = getattr(block.conv, name).weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("window", [4, 8])
def test_k_range(window):
    operator = KNNGraphAttention(16, 2, window, 1)
    for k in (1, 2, window * window - 1):
        operator.k = k
        assert operator.k == k
    for bad in (0, -1, window * window, window * window + 5):
        with pytest.raises(ValueError):
            operator.k = bad
    with pytest.raises(ValueError):
        KNNGraphAttention(16, 2, window, window * window)


def test_model_k_is_settable_at_inference_and_trained_k_is_kept():
    model = GABIC(TINY_CONFIG).eval()
    assert model.k == TINY_CONFIG.k == 9
    model.set_k(15)  # smallest window is 4: 1..15
    assert model.k == 15 and all(op.k == 15 for op in model.graph_operators())
    assert model.config.k == 9
    model.set_k(1)
    assert model.k == 1
    for bad in (0, 16, 63):
        with pytest.raises(ValueError, match="1..15"):
            model.set_k(bad)
    assert model.k == 1
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        model(x)  # runs with k=1


def _dense_attention_over_others(operator: KNNGraphAttention, nodes: torch.Tensor) -> torch.Tensor:
    """Window self-attention over all *other* nodes, built by hand from the weights."""
    num_windows, n, channels = nodes.shape
    heads, d = operator.heads, operator.head_dim
    w = operator.window
    wq, wk, wv = operator.qkv.weight.split(channels)
    bq, bk, bv = operator.qkv.bias.split(channels)
    edge = operator.lin_edge.weight[:, 0]  # (C,)
    rows = torch.arange(n) // w
    cols = torch.arange(n) % w
    attribute = ((rows[:, None] - rows[None, :]) + (cols[:, None] - cols[None, :])).float() ** 2
    outputs = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        q = (nodes @ wq[sl].T + bq[sl]) / d**0.5
        k = nodes @ wk[sl].T + bk[sl]
        v = nodes @ wv[sl].T + bv[sl]
        score = q @ k.transpose(1, 2) + attribute * edge[sl].sum()
        score = score.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
        outputs.append(torch.softmax(score, dim=-1) @ v)
    return torch.cat(outputs, dim=-1) @ operator.proj.weight.T + operator.proj.bias


@pytest.mark.parametrize("window", [4, 8])
def test_fully_connected_graph_is_dense_window_attention(window):
    torch.manual_seed(window)
    operator = KNNGraphAttention(16, 4, window, window * window - 1)
    with torch.no_grad():
        operator.lin_edge.weight.normal_(0, 0.2)
    nodes = torch.randn(3, window * window, 16)
    with torch.no_grad():
        expected = _dense_attention_over_others(operator, nodes)
        torch.testing.assert_close(operator(nodes), expected, atol=1e-5, rtol=1e-5)
        operator.implementation = "pyg"
        torch.testing.assert_close(operator(nodes), expected, atol=1e-5, rtol=1e-5)


def test_fully_connected_block_is_dense_window_attention_plus_residual():
    block = _block(window=4, k=15, seed=7)
    x = torch.randn(1, 16, 8, 12)
    tokens = window_partition(pad_to_windows(x.permute(0, 2, 3, 1), 4), 4)
    with torch.no_grad():
        expected = window_merge(_dense_attention_over_others(block.conv, tokens), 4, 8, 12)
        torch.testing.assert_close(block(x), x + expected.permute(0, 3, 1, 2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("n", "k"), [(16, 1), (16, 7), (64, 9), (64, 63)])
def test_knn_excludes_self_and_matches_brute_force(n, k):
    torch.manual_seed(n + k)
    nodes = torch.randn(5, n, 12) * torch.rand(5, n, 1) * 10  # norms differ: normalisation matters
    neighbours = knn_in_windows(nodes, k)
    assert neighbours.shape == (5, n, k) and neighbours.dtype == torch.int64
    assert not (neighbours == torch.arange(n).view(1, n, 1)).any()
    unit = F.normalize(nodes, dim=-1)
    distance = torch.cdist(unit, unit).pow(2)
    distance = distance + torch.diag(torch.full((n,), float("inf")))
    expected = distance.argsort(dim=-1)[..., :k]
    assert torch.equal(neighbours.sort(dim=-1).values, expected.sort(dim=-1).values)
    raw = torch.cdist(nodes, nodes) + torch.diag(torch.full((n,), float("inf")))
    unnormalised = raw.argsort(dim=-1)[..., :k]
    if k < n - 1:  # the normalisation changes the graph
        assert not torch.equal(neighbours.sort(dim=-1).values, unnormalised.sort(dim=-1).values)


def test_knn_is_recomputed_on_every_call():
    block = _block(window=4, k=3)
    first = block.explain(torch.randn(1, 16, 4, 4))["neighbours"]
    assert not torch.equal(first, block.explain(torch.randn(1, 16, 4, 4))["neighbours"])


@pytest.mark.parametrize("window", [2, 4, 8])
def test_edge_attribute_is_square_of_offset_sum(window):
    table = edge_attribute_table(window)
    n = window * window
    for i in range(n):
        for j in range(n):
            ri, ci, rj, cj = i // window, i % window, j // window, j % window
            assert table[i, j] == ((ri - rj) + (ci - cj)) ** 2
    assert table[0, window + 1] == 4  # diagonal neighbour: (1+1)^2, not Euclidean 2
    assert table[1, window] == 0  # anti-diagonal neighbour: (−1+1)^2


def test_explained_graph_is_consistent():
    block = _block(window=4, k=4, seed=3)
    x = torch.randn(1, 16, 8, 8)
    found = block.explain(x)
    fields = {"neighbours", "alpha", "qk_score", "edge_score", "edge_attribute", "feature_distance"}
    assert set(found) == fields
    assert found["neighbours"].shape == (4, 16, 4) and found["alpha"].shape == (4, 2, 16, 4)
    assert torch.equal(found["neighbours"], knn_in_windows(block.windows(x), 4))
    table = edge_attribute_table(4)
    centre = torch.arange(16).view(1, 16, 1).expand_as(found["neighbours"])
    assert torch.equal(found["edge_attribute"], table[centre, found["neighbours"]])
    torch.testing.assert_close(found["alpha"].sum(-1), torch.ones(4, 2, 16))
    scores = found["qk_score"] + found["edge_score"]
    torch.testing.assert_close(found["alpha"], torch.softmax(scores, dim=-1))
    per_head = block.conv.lin_edge.weight.view(2, 8).sum(-1)
    torch.testing.assert_close(
        found["edge_score"], per_head.view(1, 2, 1, 1) * found["edge_attribute"][:, None]
    )
    # feature distances are sorted (nearest first) and are distances of normalised features
    assert torch.all(found["feature_distance"][..., 1:] >= found["feature_distance"][..., :-1] - 1e-6)
    assert torch.all(found["feature_distance"] <= 2 + 1e-6)
    unit = torch.nn.functional.normalize(block.windows(x), dim=-1)  # (nW, n, C)
    direct = (unit.unsqueeze(2) - unit[torch.arange(4).view(4, 1, 1), found["neighbours"]]).norm(dim=-1)
    torch.testing.assert_close(found["feature_distance"], direct, atol=1e-3, rtol=1e-4)
    assert not any(t.requires_grad for t in found.values())


def test_a_node_tied_with_its_copy_is_at_distance_zero():
    """Nodes with equal features tie at distance 0, so a node can be its own neighbour (the
    reference kNN drops only the first of the k + 1); its distance is then exactly 0."""
    block = _block(window=4, k=4, seed=3)
    x = torch.ones(1, 16, 4, 4)  # every node of the one window has the same features
    found = block.explain(x)
    assert torch.equal(found["feature_distance"], torch.zeros(1, 16, 4))


@pytest.mark.parametrize("training", [False, True])
def test_explained_weights_give_the_forward_output(training):
    """The weights ``explain`` returns are the ones forward uses: sum_j alpha_ij v_j, projected,
    is the operator's output (fused kernel in eval mode, spelled out in training)."""
    block = _block(window=4, k=5, seed=2).train(training)
    operator = block.conv
    nodes = block.windows(torch.randn(2, 16, 7, 9))
    found = operator.explain(nodes)
    with torch.no_grad():
        _, _, v = operator._split_heads(nodes)  # (nW, heads, n, d)
        num_windows, heads, n, d = v.shape
        index = found["neighbours"].reshape(num_windows, 1, n * 5, 1).expand(-1, heads, -1, d)
        v_neighbours = v.gather(2, index).view(num_windows, heads, n, 5, d)
        mixed = (found["alpha"].unsqueeze(-1) * v_neighbours).sum(-2)
        expected = operator.proj(mixed.transpose(1, 2).reshape(num_windows, n, heads * d))
        torch.testing.assert_close(operator(nodes), expected, atol=1e-5, rtol=1e-5)
    assert block.training == training  # explain does not switch modes


def test_graph_layers_keep_no_state_between_calls():
    block = _block(window=4, k=3)
    before = {name: set(vars(module)) for name, module in block.named_modules()}
    with torch.no_grad():
        block(torch.randn(1, 16, 8, 8))
    block.explain(torch.randn(1, 16, 8, 8))
    assert {name: set(vars(module)) for name, module in block.named_modules()} == before
    for name in ("record", "last", "last_grid"):
        assert not hasattr(block, name) and not hasattr(block.conv, name)


def test_block_grid_and_windows():
    block = _block(window=4, k=3)
    grid = block.grid(9, 13)
    assert (grid.height, grid.width, grid.padded_height, grid.padded_width, grid.shift) == (9, 13, 12, 16, 0)
    assert block.windows(torch.randn(2, 16, 9, 13)).shape == (2 * 3 * 4, 16, 16)
