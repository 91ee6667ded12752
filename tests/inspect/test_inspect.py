"""Inspection API: bit maps, rates, pixel <-> node mapping, recorded graphs and attention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import TINY_CONFIG, random_image

from gabic import codec
from gabic.codec.images import image_to_tensor
from gabic.inspect import analyze, bit_difference, spread_bits
from gabic.models import GABIC, build_model

WIDTH, HEIGHT = 150, 90  # not multiples of 64: padding on all sides


@pytest.fixture(scope="module")
def analyses() -> dict[str, object]:
    image = random_image(HEIGHT, WIDTH, seed=6)
    out = {}
    for arch in ("gabic", "zou2022"):
        torch.manual_seed(9)
        model = build_model(arch, TINY_CONFIG).eval()
        model.update(force=True)
        out[arch] = (model, analyze(model, image))
    return out


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_bit_maps_sum_to_estimated_bits(analyses, arch):
    _, result = analyses[arch]
    total = result.y_bits.sum(dtype=np.float64) + result.z_bits.sum(dtype=np.float64)
    assert result.bits_estimated == pytest.approx(total, rel=1e-9)
    pixel_map = result.bits_per_pixel_map
    assert pixel_map.shape == (HEIGHT, WIDTH)
    assert pixel_map.sum(dtype=np.float64) == pytest.approx(result.bits_estimated, rel=1e-5)
    assert pixel_map.mean(dtype=np.float64) == pytest.approx(result.bpp_estimated, rel=1e-5)
    assert result.y_bits.shape == (8, 12) and result.z_bits.shape == (2, 3)  # padded 128 x 192
    assert result.y_bits_per_pixel_map.sum(dtype=np.float64) == pytest.approx(
        result.y_bits.sum(dtype=np.float64), rel=1e-5
    )


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_estimated_and_real_rate_agree(analyses, arch):
    model, result = analyses[arch]
    assert result.bpp == len(result.data) * 8 / (WIDTH * HEIGHT)
    header_bits = codec.read_header(result.data).header_size * 8
    payload_bpp = (len(result.data) * 8 - header_bits) / (WIDTH * HEIGHT)
    assert payload_bpp == pytest.approx(result.bpp_estimated, rel=0.01, abs=64 * 8 / (WIDTH * HEIGHT))
    assert result.psnr == pytest.approx(
        10
        * math.log10(
            1
            / np.mean((np.asarray(result.original) / 255.0 - np.asarray(result.reconstruction) / 255.0) ** 2)
        ),
        rel=1e-6,
    )
    assert math.isnan(result.ms_ssim)  # 90 px: too small for 5-scale MS-SSIM


def test_spread_bits_preserves_the_total():
    rng = np.random.default_rng(0)
    for height, width, stride in [(90, 150, 16), (1, 1, 64), (17, 33, 16), (300, 200, 64)]:
        from compressai.ops import compute_padding

        pad, _ = compute_padding(height, width, min_div=64)
        cells = ((height + pad[2] + pad[3]) // stride, (width + pad[0] + pad[1]) // stride)
        bits = rng.random(cells)
        spread = spread_bits(bits, stride, height, width, pad[2], pad[0])
        assert spread.shape == (height, width)
        assert spread.sum(dtype=np.float64) == pytest.approx(bits.sum(), rel=1e-5)


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_pixel_node_pixel_mapping(analyses, arch):
    _, result = analyses[arch]
    assert set(result.blocks) == {"encoder 1/4", "encoder 1/16", "decoder 1/16", "decoder 1/4"}
    for name, block in result.blocks.items():
        assert block.stride == (4 if "1/4" in name else 16)
        assert block.shift == (block.window // 2 if arch == "zou2022" else 0)
        assert (block.grid_height, block.grid_width) == (128 // block.stride, 192 // block.stride)
        for row in range(block.grid_height):
            for col in range(block.grid_width):
                x, y = block.cell_centre(row, col)
                assert block.cell_at(x, y) == (row, col)
                window, node = block.node_at(x, y)
                assert 0 <= window < block.num_windows and 0 <= node < block.window**2
                assert block.node_to_cell(window, node) == (row, col)
                assert (row, col) in block.window_cells(window)
                assert any(x0 <= x < x1 and y0 <= y < y1 for x0, y0, x1, y1 in block.window_outline(window))
        # every cell belongs to exactly one (window, node)
        seen = {block.cell_to_node(r, c) for r in range(block.padded_grid_height)
                for c in range(block.padded_grid_width)}  # fmt: skip
        assert len(seen) == block.padded_grid_height * block.padded_grid_width


def test_shifted_windows_wrap_around(analyses):
    _, result = analyses["zou2022"]
    block = result.blocks["decoder 1/16"]  # 8x12 grid, window 4, shift 2
    last = block.num_windows - 1
    cells = block.window_cells(last)
    rows = {r for r, _ in cells}
    assert rows == {6, 7, 0, 1}  # the bottom-right window holds the wrapped top/left cells
    assert len(block.window_outline(last)) == 4


def test_graph_neighbours_and_attention_maps(analyses):
    model, result = analyses["gabic"]
    assert result.k == model.k == result.trained_k
    for block in result.blocks.values():
        assert block.kind == "graph" and block.k == model.k
        x, y = block.cell_centre(block.grid_height // 2, block.grid_width // 2)
        rows = block.neighbours_of(x, y)
        assert len(rows) == block.k
        window, node = block.node_at(x, y)
        centre = block.node_to_cell(window, node)
        assert len({r["node"] for r in rows}) == block.k
        for row in rows:
            if row["node"] == node:  # only when another node ties with it (reference kNN quirk)
                assert row["feature_distance"] == 0
            assert row["cell"] in block.window_cells(window)
            dr, dc = row["offset"]
            assert (row["cell"][0] - centre[0], row["cell"][1] - centre[1]) == (dr, dc)
            assert row["edge_attribute"] == (dr + dc) ** 2
            assert len(row["alpha"]) == block.heads
        assert sum(sum(r["alpha"]) for r in rows) == pytest.approx(block.heads, rel=1e-5)
        for head in (None, 0, block.heads - 1):
            amap = block.attention_map(x, y, head)
            assert amap.shape == (block.window, block.window)
            assert amap.sum() == pytest.approx(1.0, rel=1e-5)
            assert np.count_nonzero(amap) <= block.k


def test_window_attention_maps(analyses):
    _, result = analyses["zou2022"]
    for block in result.blocks.values():
        assert block.kind == "window"
        assert block.alpha.shape[1:] == (block.heads, block.window**2, block.window**2)
        x, y = block.cell_centre(0, 0)
        for head in (None, 1):
            amap = block.attention_map(x, y, head)
            assert amap.shape == (block.window, block.window)
            assert amap.sum() == pytest.approx(1.0, abs=2e-3)  # stored in fp16 on CPU
        with pytest.raises(ValueError, match="GABIC"):
            block.neighbours_of(x, y)


def _layer_attributes(model) -> dict[str, set[str]]:
    return {name: set(vars(module)) for name, module in model.named_modules()}


def _hook_count(model) -> int:
    return sum(len(module._forward_hooks) for module in model.modules())


def test_analyze_with_another_k_records_it_and_leaves_the_model_alone(monkeypatch):
    torch.manual_seed(1)
    model = build_model("gabic", TINY_CONFIG).eval()
    model.update(force=True)
    attributes, state = _layer_attributes(model), {k: v.clone() for k, v in model.state_dict().items()}
    set_k = GABIC.set_k

    def set_k_of_others_only(self, k):
        assert self is not model, "analyze must not change the model's k, not even for a while"
        set_k(self, k)

    monkeypatch.setattr(GABIC, "set_k", set_k_of_others_only)
    result = analyze(model, random_image(64, 64, seed=2), k=4)
    monkeypatch.undo()
    assert result.k == 4 and result.trained_k == TINY_CONFIG.k and model.k == TINY_CONFIG.k
    assert codec.read_header(result.data).k == 4
    assert all(b.k == 4 for b in result.blocks.values())
    assert all(len(b.neighbours_of(10, 10)) == 4 for b in result.blocks.values())
    # nothing was left on the layers, no hook stays, the weights are untouched
    assert _layer_attributes(model) == attributes and _hook_count(model) == 0
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    # the same analysis through a model that already has k=4 gives the same numbers
    same = build_model("gabic", TINY_CONFIG).eval()
    same.load_state_dict(model.state_dict())
    same.set_k(4)
    direct = analyze(same, random_image(64, 64, seed=2))
    assert direct.data == result.data
    for name, block in direct.blocks.items():
        assert torch.equal(block.alpha, result.blocks[name].alpha)
        assert torch.equal(block.neighbours, result.blocks[name].neighbours)
    with pytest.raises(ValueError):
        analyze(build_model("zou2022", TINY_CONFIG), random_image(8, 8), k=3)


def test_bit_difference(analyses):
    a = analyses["gabic"][1]
    b = analyses["zou2022"][1]
    diff = bit_difference(a, b)
    assert diff.shape == (HEIGHT, WIDTH)
    np.testing.assert_allclose(diff, a.bits_per_pixel_map - b.bits_per_pixel_map)
    torch.manual_seed(0)
    other = analyze(build_model("gabic", TINY_CONFIG).eval(), random_image(20, 20), inspect_attention=False)
    assert other.blocks == {}
    with pytest.raises(ValueError, match="different sizes"):
        bit_difference(a, other)


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_analysis_reconstruction_is_what_the_decoder_gives(analyses, arch):
    """The analysis must show the image a user decoding ``result.data`` gets, bit for bit."""
    model, result = analyses[arch]
    decoded = np.asarray(codec.decompress(result.data, model))
    x = image_to_tensor(result.original)
    padded, unpad = codec.pad_image(x)
    cells = codec.coded_cells(x.shape[-2], x.shape[-1])
    with torch.no_grad():
        expected = codec.crop_image(model(padded, coded_cells=cells)["x_hat"], unpad).clamp(0, 1)
    assert np.array_equal(decoded, (expected[0].permute(1, 2, 0) * 255).round().byte().numpy())
    assert np.array_equal(np.asarray(result.reconstruction), decoded)


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_analysis_without_decoding_shows_the_same_image(analyses, arch):
    """``decode=False`` (the app's way) takes the image from the encoder's ŷ: same bytes, same
    pixels, same bit maps; only ``decode_ms`` is not measured."""
    model, decoded = analyses[arch]
    k = 3 if arch == "gabic" else None  # another k too: the copy with that k reconstructs
    for kk in (None, k) if k else (None,):
        reference = decoded if kk is None else analyze(model, decoded.original, k=kk)
        fast = analyze(model, decoded.original, k=kk, decode=False)
        assert fast.data == reference.data
        assert np.array_equal(np.asarray(fast.reconstruction), np.asarray(reference.reconstruction))
        assert np.array_equal(fast.y_bits, reference.y_bits) and fast.psnr == reference.psnr
        assert math.isnan(fast.decode_ms) and fast.encode_ms > 0
        assert np.array_equal(np.asarray(codec.decompress(fast.data, model)), np.asarray(fast.reconstruction))
