"""Model structure: reference state-dict keys/shapes, CompressAI contract, Zou2022's window block."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from compressai.models.utils import remap_old_keys
from helpers import TINY_CONFIG

from gabic.layers import ShiftedWindowBlock, WindowAttention
from gabic.layers.window_attention import MASKED_SCORE, relative_position_index, shifted_window_mask
from gabic.models import GABIC, PAPER_CONFIG, SMALL_CONFIG, ModelConfig, Zou2022, build_model

REFERENCE_KEYS = Path(__file__).resolve().parent / "data" / "reference_state_dict_keys.json"


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, list[int]]]:
    return json.loads(REFERENCE_KEYS.read_text())


@pytest.fixture(scope="module")
def paper_models() -> dict[str, torch.nn.Module]:
    """Default (paper) GABIC and Zou2022, built once: 75 M parameters each."""
    torch.manual_seed(0)
    return {"gabic": GABIC(), "zou2022": Zou2022()}


def _shapes(state: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_state_dict_matches_reference_keys_and_shapes(arch, reference, paper_models):
    # The reference names EntropyBottleneck parameters _matrix0/_bias0/_factor0;
    # CompressAI 1.2.8 renames them matrices.0/... (its documented legacy mapping).
    legacy = {k: torch.empty(shape) for k, shape in reference[arch].items()}
    expected = _shapes(remap_old_keys("entropy_bottleneck", legacy))
    assert any(k.startswith("entropy_bottleneck._matrix") for k in reference[arch])
    ours = _shapes(paper_models[arch].state_dict())
    assert sorted(set(expected) - set(ours)) == []
    assert sorted(set(ours) - set(expected)) == []
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}


def test_paper_models_have_the_papers_size(paper_models):
    for model in paper_models.values():
        params = sum(p.numel() for p in model.parameters())
        assert 75.0e6 < params < 75.5e6
        assert model.config == PAPER_CONFIG


def test_reference_module_tree(paper_models):
    gabic, zou = paper_models["gabic"], paper_models["zou2022"]
    block = gabic.get_submodule("g_a.4.conv_b.0")
    assert block.window == 8 and block.conv.k == 9
    assert gabic.get_submodule("g_a.8.conv_b.0").window == 4
    assert gabic.get_submodule("g_s.0.conv_b.0").window == 4
    assert gabic.get_submodule("g_s.5.conv_b.0").window == 8
    zblock = zou.get_submodule("g_s.5.conv_b.0")
    assert isinstance(zblock, ShiftedWindowBlock) and zblock.shift == 4
    assert zou.get_submodule("g_a.8.conv_b.0").shift == 2
    assert "g_a.4.conv_b.0.attn.relative_position_index" in zou.state_dict()
    # GABIC's edge table is derived, not part of the checkpoint format.
    assert not any("edge_table" in k for k in gabic.state_dict())


def test_small_configurations_scale_widths():
    assert SMALL_CONFIG.hyper_widths() == (96, 88, 80, 72, 64)
    assert PAPER_CONFIG.hyper_widths() == (320, 288, 256, 224, 192)
    assert PAPER_CONFIG.resolved_slice_widths() == (224, 176, 128, 64)
    scaled = ModelConfig(N=64, M=160, hyper_channels=96, num_slices=5, heads=4)
    assert scaled.resolved_slice_widths() == (112, 88, 64, 32)
    with pytest.raises(ValueError):
        ModelConfig(M=48, num_slices=5)
    with pytest.raises(ValueError):
        ModelConfig(N=30, M=48, heads=8, num_slices=4)
    assert ModelConfig.from_dict(TINY_CONFIG.to_dict()) == TINY_CONFIG
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({**TINY_CONFIG.to_dict(), "bogus": 1})


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_forward_keeps_the_compressai_contract(arch):
    torch.manual_seed(1)
    model = build_model(arch, TINY_CONFIG).train()
    x = torch.rand(2, 3, 64, 128)
    out = model(x)
    assert out["x_hat"].shape == x.shape
    assert out["likelihoods"]["y"].shape == (2, TINY_CONFIG.M, 4, 8)
    assert out["likelihoods"]["z"].shape == (2, TINY_CONFIG.hyper_channels, 1, 2)
    for likelihood in out["likelihoods"].values():
        assert torch.all(likelihood > 0) and torch.all(likelihood <= 1)
    bits = sum(torch.log2(v).sum() for v in out["likelihoods"].values())
    loss = -bits + ((out["x_hat"] - x) ** 2).mean() + model.aux_loss()
    loss.backward()
    assert model.g_a[0].weight.grad is not None and model.g_a[0].weight.grad.abs().sum() > 0


def test_build_model_rejects_unknown_arch():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("cheng2020", TINY_CONFIG)


# ------------------------------------------------------------------ Zou2022 block
def _swin_relative_position_index(window: int) -> torch.Tensor:
    """The construction of the Swin Transformer paper/code, written out."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    flat = coords.flatten(1)  # (2, n)
    relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += window - 1
    relative[:, :, 1] += window - 1
    relative[:, :, 0] *= 2 * window - 1
    return relative.sum(-1)


@pytest.mark.parametrize("window", [2, 4, 8])
def test_relative_position_index_is_swins(window):
    index = relative_position_index(window)
    assert torch.equal(index, _swin_relative_position_index(window))
    assert index.min() == 0 and index.max() == (2 * window - 1) ** 2 - 1
    attn = WindowAttention(16, 2, window)
    assert torch.equal(attn.relative_position_index, index)


def _wrap_labels(height: int, width: int, shift: int) -> torch.Tensor:
    """Label of each position of the shifted grid: which side of the wrap its content came from."""
    rows = (torch.arange(height) + shift) >= height
    cols = (torch.arange(width) + shift) >= width
    return rows[:, None].long() * 2 + cols[None, :].long()


@pytest.mark.parametrize(("height", "width", "window"), [(8, 8, 4), (16, 8, 4), (16, 24, 8), (4, 4, 4)])
def test_shifted_window_mask_separates_wrapped_regions(height, width, window):
    shift = window // 2
    mask = shifted_window_mask(height, width, window, shift)
    labels = _wrap_labels(height, width, shift)
    rows, cols = height // window, width // window
    assert mask.shape == (rows * cols, window * window, window * window)
    for w in range(rows * cols):
        r0, c0 = (w // cols) * window, (w % cols) * window
        node_labels = labels[r0 : r0 + window, c0 : c0 + window].reshape(-1)
        differs = node_labels[:, None] != node_labels[None, :]
        expected = torch.where(differs, torch.tensor(MASKED_SCORE), torch.tensor(0.0))
        assert torch.equal(mask[w], expected), f"window {w}"
    # Only windows touching the bottom/right edge mix regions.
    assert torch.all(mask[0] == 0) or rows * cols == 1
    assert (mask == MASKED_SCORE).any()


def _loop_shifted_block(block: ShiftedWindowBlock, x: torch.Tensor) -> torch.Tensor:
    """Straightforward per-window implementation of Zou2022's block (no batching tricks)."""
    attn, w, s = block.attn, block.window, block.shift
    batch, channels, height, width = x.shape
    heads, d = attn.heads, attn.head_dim
    wq, wk, wv = attn.qkv.weight.split(channels)
    bq, bk, bv = attn.qkv.bias.split(channels)
    table = attn.relative_position_bias_table
    labels = _wrap_labels(height, width, s)
    out = torch.zeros(batch, height, width, channels)
    for b in range(batch):
        grid = torch.roll(x[b].permute(1, 2, 0), shifts=(-s, -s), dims=(0, 1))  # (H, W, C)
        result = torch.zeros_like(grid)
        for r0 in range(0, height, w):
            for c0 in range(0, width, w):
                nodes = grid[r0 : r0 + w, c0 : c0 + w].reshape(-1, channels)
                node_labels = labels[r0 : r0 + w, c0 : c0 + w].reshape(-1)
                coords = [(i // w, i % w) for i in range(w * w)]
                merged = torch.zeros(w * w, channels)
                for h in range(heads):
                    sl = slice(h * d, (h + 1) * d)
                    q = (nodes @ wq[sl].T + bq[sl]) * d**-0.5
                    k = nodes @ wk[sl].T + bk[sl]
                    v = nodes @ wv[sl].T + bv[sl]
                    score = q @ k.T
                    for i, (ri, ci) in enumerate(coords):
                        for j, (rj, cj) in enumerate(coords):
                            score[i, j] += table[(ri - rj + w - 1) * (2 * w - 1) + (ci - cj + w - 1), h]
                            if node_labels[i] != node_labels[j]:
                                score[i, j] += MASKED_SCORE
                    merged[:, sl] = torch.softmax(score, dim=-1) @ v
                result[r0 : r0 + w, c0 : c0 + w] = (merged @ attn.proj.weight.T + attn.proj.bias).view(
                    w, w, channels
                )
        out[b] = torch.roll(result, shifts=(s, s), dims=(0, 1))
    return x + out.permute(0, 3, 1, 2)


@pytest.mark.parametrize("training", [True, False], ids=["spelled-out", "fused-eval"])
@pytest.mark.parametrize(("window", "size"), [(4, (8, 12)), (8, (16, 16)), (4, (16, 20)), (4, (4, 4))])
def test_shifted_block_equals_per_window_loop(window, size, training):
    """Both paths (training mode's softmax, eval mode's fused attention: the windows the shift
    wraps with their mask, the others with the position bias alone, in a batch of two) against
    the per-window loop."""
    torch.manual_seed(2)
    block = ShiftedWindowBlock(8, 2, window).train(training)
    with torch.no_grad():
        block.attn.relative_position_bias_table.normal_(0, 1.0)
    x = torch.randn(2, 8, *size)
    with torch.no_grad():
        expected = _loop_shifted_block(block, x)
        actual = block(x)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_shifted_block_pads_inputs_that_are_not_whole_windows():
    torch.manual_seed(3)
    block = ShiftedWindowBlock(8, 2, 4)
    x = torch.randn(1, 8, 6, 7)
    with torch.no_grad():
        out = block(x)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_shifted_block_explains_the_weights_its_forward_uses():
    torch.manual_seed(4)
    block = ShiftedWindowBlock(8, 2, 4)
    with torch.no_grad():
        block.attn.relative_position_bias_table.normal_(0, 1.0)
    x = torch.randn(2, 8, 8, 12)
    nodes, mask = block.windows(x)
    assert nodes.shape == (2 * 6, 16, 8) and mask.shape == (6, 16, 16)
    alpha = block.explain(x)["alpha"]
    assert alpha.shape == (12, 2, 16, 16) and not alpha.requires_grad
    torch.testing.assert_close(alpha.sum(-1), torch.ones(12, 2, 16))
    assert torch.equal(alpha, block.attn.attention_weights(nodes, mask))
    attn = block.attn
    with torch.no_grad():
        v = attn.split_heads(attn.qkv(nodes))[2]
        mixed = torch.matmul(alpha, v).transpose(1, 2).reshape(12, 16, 8)
        torch.testing.assert_close(attn(nodes, mask), attn.proj(mixed), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(attn.eval()(nodes, mask), attn.proj(mixed), atol=1e-6, rtol=1e-6)
    grid = block.grid(6, 7)
    assert (grid.padded_height, grid.padded_width, grid.shift) == (8, 8, 2)
    assert not any(hasattr(m, name) for m in (block, attn) for name in ("record", "last", "last_grid"))


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_model_metadata_is_declared_and_set_by_the_constructor(arch):
    from gabic.models import ChannelwiseAttentionCodec

    assert {"model_id", "quality", "card"} <= set(ChannelwiseAttentionCodec.__annotations__)
    plain = build_model(arch, TINY_CONFIG)
    assert (plain.model_id, plain.quality, plain.card) == (arch, 0, {})
    card = {"lambda": 0.01}
    named = build_model(arch, TINY_CONFIG, model_id="mine", quality=2.5, card=card)
    assert (named.model_id, named.quality, named.card) == ("mine", 2.5, card)
    assert build_model(arch, TINY_CONFIG).card is not plain.card  # no shared default
