"""The entropy model opened up (issue 16): per-element maps that match the real codec, bits per
channel/slice, progressive decoding that ends at the real decode, the kNN graph's adjacent-edge
share against its random baseline, and the figures drawn from them."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import TINY_CONFIG, random_image, tiny_codecs

from gabic import codec
from gabic.codec.images import image_to_tensor
from gabic.inspect import BlockInspection
from gabic.inspect.entropy import EntropyView, entropy_view
from gabic.inspect.graph_structure import (
    adjacency_shares,
    adjacent_cell_counts,
    adjacent_edge_share,
    adjacent_edges,
    random_adjacent_share,
)
from gabic.inspect.progressive import ProgressiveDecoding, decode_from_slices, progressive_decoding
from gabic.models import build_model
from gabic.viz import entropy as figures

ARCHS = ["gabic", "zou2022"]
# Not a multiple of 64 in either direction: the codec pads on the right (28 px) and at the bottom
# (58 px), and leaves the bottom two rows of latent cells out of the stream.
HEIGHT, WIDTH = 70, 100


@pytest.fixture(scope="module")
def models():
    """Tiny random codecs whose latent is loud enough to quantise to many values (random weights
    alone give a latent that rounds to its mean almost everywhere)."""
    codecs = tiny_codecs(seed=3)
    with torch.no_grad():
        for model in codecs.values():
            model.g_a[7].weight.mul_(40.0)
    return codecs


@pytest.fixture(scope="module")
def image():
    return random_image(HEIGHT, WIDTH, seed=5)


@pytest.fixture(scope="module")
def views(models, image):
    return {arch: entropy_view(model, image) for arch, model in models.items()}


@pytest.fixture(scope="module")
def containers(models, image):
    return {arch: codec.encode_tensor(model, image_to_tensor(image), with_likelihoods=True)
            for arch, model in models.items()}  # fmt: skip


# ------------------------------------------------------------------ entropy view
@pytest.mark.parametrize("arch", ARCHS)
def test_bits_are_the_codecs_likelihoods(views, containers, arch):
    view, (_, likelihoods) = views[arch], containers[arch]
    codec_y_bits = (-torch.log2(likelihoods["y"][0])).numpy()
    codec_z_bits = (-torch.log2(likelihoods["z"][0])).numpy()
    assert view.bits.shape == (TINY_CONFIG.M, 8, 8)  # padded to 128×128, cells of 16 px
    assert np.array_equal(view.bits, codec_y_bits)
    assert np.array_equal(view.z_bits, codec_z_bits)


@pytest.mark.parametrize("arch", ARCHS)
def test_channel_and_slice_bits_sum_to_the_estimated_total(views, containers, arch):
    view, (_, likelihoods) = views[arch], containers[arch]
    total = float((-torch.log2(likelihoods["y"][0].double())).sum())
    assert view.channel_bits.shape == (TINY_CONFIG.M,)
    assert view.channel_bits.sum() == pytest.approx(total, rel=1e-6)
    assert view.slice_bits.sum() == pytest.approx(total, rel=1e-6)
    per_slice = TINY_CONFIG.M // TINY_CONFIG.num_slices
    assert view.slice_bits[1] == pytest.approx(view.bits[per_slice : 2 * per_slice].sum(dtype=np.float64))
    assert view.max_entropy_channel == int(np.argmax(view.channel_bits))
    assert np.all(np.diff(view.channel_bits[view.channels_by_bits]) <= 0)
    assert view.slice_of(view.channels - 1) == view.num_slices - 1


@pytest.mark.parametrize("arch", ARCHS)
def test_maps_follow_the_slice_recipe(views, arch):
    view = views[arch]
    coded = view.coded_cells
    assert coded.sum() == 6 * 8 and not coded[6:].any()
    assert np.allclose(
        (view.y_quantized - view.mu)[:, coded], np.round(view.y - view.mu)[:, coded], atol=1e-4
    )
    assert np.all(view.bits[:, ~coded] == 0)  # left out of the stream
    assert np.array_equal(view.y_quantized[:, 6:], np.repeat(view.y_quantized[:, 5:6], 2, axis=1))
    assert np.all(view.sigma >= 0.11 - 1e-7)  # the Gaussian's lower scale bound
    assert np.all(np.abs(view.lrp) <= 0.5 + 1e-6)  # 0.5·tanh(...)
    assert not np.array_equal(view.y_hat, view.y_quantized)


def test_padding_geometry(views):
    view = views["gabic"]
    assert view.pad == (0, 28, 0, 58) and view.layout == "compact"
    assert view.image_fraction.sum() * 16 * 16 == pytest.approx(HEIGHT * WIDTH)
    # Rows: the image ends at 70 px -> cell 4 holds 6 image rows (its centre is in the padding),
    # cells 5..7 are padding.
    assert view.padding_cells[5:].all() and not view.padding_cells[:5, :7].any()
    assert view.in_image[3, :6].all() and not view.in_image[4].any()
    # Columns: the image ends at 100 px -> cell 6 holds 4 image columns, cell 7 is padding.
    assert view.padding_cells[:, 7].all() and not view.in_image[:, 6].any()
    rows, cols = view.image_cells
    assert view.in_image[rows, cols].all() and view.in_image.sum() == view.in_image[rows, cols].size
    assert view.padding_bits == pytest.approx(view.bits[:, view.padding_cells].sum(dtype=np.float64))


def test_bad_calls_are_refused(models, image, views):
    model = models["gabic"]
    with pytest.raises(ValueError, match="variable-rate"):
        entropy_view(model, image, quality=2)
    with pytest.raises(ValueError, match="slices must be"):
        decode_from_slices(model, views["gabic"], TINY_CONFIG.num_slices + 1)
    with pytest.raises(ValueError, match="another model"):
        decode_from_slices(models["zou2022"], views["gabic"], 1)
    training = build_model("gabic", TINY_CONFIG).train()
    with pytest.raises(ValueError, match="eval"):
        entropy_view(training, image)


def test_another_k_is_recorded_and_needed_to_decode(models, image, views):
    model = models["gabic"]
    other = copy.deepcopy(model)
    other.set_k(3)
    view = entropy_view(other, image)
    assert view.k == 3 and views["gabic"].k == TINY_CONFIG.k == model.k
    assert not np.array_equal(view.y, views["gabic"].y)
    with pytest.raises(ValueError, match="k=3"):
        decode_from_slices(model, view, 1)


# ------------------------------------------------------------------ progressive decoding
@pytest.mark.parametrize("arch", ARCHS)
def test_all_slices_decode_to_the_real_decoder_output_bit_for_bit(models, views, containers, arch):
    data, _ = containers[arch]
    decoded = codec.decompress_tensor(data, models[arch])
    assert torch.equal(decode_from_slices(models[arch], views[arch], TINY_CONFIG.num_slices), decoded)
    assert not torch.equal(decode_from_slices(models[arch], views[arch], TINY_CONFIG.num_slices - 1), decoded)


def test_progressive_steps_bits_and_quality(models, views, image):
    view = views["zou2022"]
    decoding = progressive_decoding(models["zou2022"], view)
    assert decoding.steps == list(range(TINY_CONFIG.num_slices + 1))
    assert decoding.bits[0] == pytest.approx(view.z_bits_total)
    assert decoding.bits[-1] == pytest.approx(view.bits_total)
    assert np.allclose(np.diff(decoding.bits), view.slice_bits)
    assert decoding.bpp[-1] == pytest.approx(view.bpp_estimated)
    assert all(r.size == image.size for r in decoding.reconstructions)
    full = codec.tensor_to_image(decode_from_slices(models["zou2022"], view, TINY_CONFIG.num_slices))
    assert np.array_equal(np.asarray(decoding.reconstructions[-1]), np.asarray(full))
    assert decoding.psnr[-1] == pytest.approx(codec_psnr(image, full))


def codec_psnr(a, b) -> float:
    from gabic.metrics import psnr

    return psnr(image_to_tensor(a), image_to_tensor(b))


def test_variable_rate_model_matches_its_forward_pass(image):
    torch.manual_seed(7)
    model = build_model("gabic", TINY_CONFIG.with_rate_levels(3)).eval()
    with torch.no_grad():
        for gain in (model.y_gain, model.z_gain):
            gain.log_gain.normal_(0, 0.3)
            gain.log_inverse_gain.normal_(0, 0.3)
    view = entropy_view(model, image, quality=2.5)
    padded, unpad = codec.pad_image(image_to_tensor(image))
    with torch.no_grad():
        out = model(padded, quality=2.5, coded_cells=codec.coded_cells(HEIGHT, WIDTH))
    assert np.array_equal(view.bits, (-torch.log2(out["likelihoods"]["y"][0])).numpy())
    expected = codec.crop_image(out["x_hat"], unpad).clamp(0, 1)
    assert torch.equal(decode_from_slices(model, view, TINY_CONFIG.num_slices), expected)
    with pytest.raises(ValueError, match="quality"):
        entropy_view(model, image)


# ------------------------------------------------------------------ the window as a graph
def test_adjacent_cell_counts_and_closed_form():
    corner, side, inner = 3, 5, 8
    expected = [[corner, side, side, corner], [side, inner, inner, side]]
    assert adjacent_cell_counts(4).reshape(4, 4).tolist() == expected + expected[::-1]
    assert random_adjacent_share(4) == pytest.approx(84 / 16 / 15)
    assert random_adjacent_share(8) == pytest.approx(420 / 64 / 63)


@pytest.mark.parametrize(("window", "k"), [(4, 9), (8, 9), (8, 3)])
def test_random_baseline_matches_a_simulation(window, k):
    rng = np.random.default_rng(window * 100 + k)
    n, trials = window * window, 3000
    nodes = np.arange(n)
    picks = np.empty((trials, n, k), dtype=np.int64)
    for i in range(n):
        others = np.delete(nodes, i)
        keys = rng.random((trials, n - 1))
        picks[:, i] = others[np.argsort(keys, axis=1)[:, :k]]
    simulated = adjacent_edges(picks, window).mean()
    # Standard error of the mean over trials * n * k (dependent) edges is below 0.002.
    assert simulated == pytest.approx(random_adjacent_share(window), abs=0.006)


def _synthetic_block(neighbours: np.ndarray, window: int, grid: int, pad: int) -> BlockInspection:
    windows = neighbours.shape[0]
    return BlockInspection(
        name="encoder 1/16", kind="graph", window=window, stride=16, grid_height=grid, grid_width=grid,
        padded_grid_height=grid, padded_grid_width=grid, shift=0, pad_top=pad, pad_left=pad, heads=1,
        alpha=torch.ones(windows, 1, window * window, neighbours.shape[-1]), k=neighbours.shape[-1],
        neighbours=torch.from_numpy(neighbours),
    )  # fmt: skip


def test_adjacent_edge_share_separates_image_and_padding():
    window, k, grid = 4, 3, 8  # 2×2 windows; the image covers the top-left 4×4 cells
    n = window * window
    rows, cols = np.divmod(np.arange(n), window)
    distance = np.maximum(np.abs(rows[:, None] - rows[None]), np.abs(cols[:, None] - cols[None]))
    adjacent = np.stack([np.flatnonzero(distance[i] == 1)[:k] for i in range(n)])
    far = np.stack([np.flatnonzero(distance[i] >= 2)[:k] for i in range(n)])
    neighbours = np.stack([adjacent, far, far, far])  # window 0 is the image
    share = adjacent_edge_share(_synthetic_block(neighbours, window, grid, pad=0), 64, 64)
    assert (share.share, share.edges) == (1.0, n * k)
    assert (share.padding_share, share.padding_edges) == (0.0, 3 * n * k)
    assert share.random_share == pytest.approx(random_adjacent_share(window))
    assert share.ratio == pytest.approx(1 / random_adjacent_share(window))
    # Two cells of padding on top and left: only the bottom-right 2×2 cells of window 0 show the image.
    shifted = adjacent_edge_share(_synthetic_block(neighbours, window, grid, pad=32), 32, 32)
    inner = [10, 11, 14, 15]
    assert shifted.edges == len(inner) * k
    assert shifted.random_share == pytest.approx(random_adjacent_share(window, np.array(inner)))


def test_adjacency_shares_of_a_real_analysis_agree_with_the_neighbour_table(models, image):
    from gabic.inspect import analyze

    analysis = analyze(models["gabic"], image)
    shares = adjacency_shares(analysis)
    assert list(shares) == list(analysis.blocks)
    block = analysis.blocks["encoder 1/4"]
    share = shares["encoder 1/4"]
    inside_cells = {(r, c) for r in range(block.grid_height) for c in range(block.grid_width)
                    if 0 <= (r + 0.5) * 4 - block.pad_top < HEIGHT and 0 <= (c + 0.5) * 4 - block.pad_left < WIDTH}  # fmt: skip
    assert share.edges == len(inside_cells) * block.k
    # The same count from BlockInspection.neighbours_of (cell offsets), an independent path.
    count = sum(max(abs(e["offset"][0]), abs(e["offset"][1])) == 1
                for r, c in inside_cells for e in block.neighbours_of(*block.cell_centre(r, c)))  # fmt: skip
    assert share.share == pytest.approx(count / share.edges)
    with pytest.raises(ValueError, match="no graph blocks"):
        adjacency_shares(analyze(models["zou2022"], image))


# ------------------------------------------------------------------ figures from synthetic data
def _view(arch: str, seed: int) -> EntropyView:
    rng = np.random.default_rng(seed)
    channels, slices, (h, w) = 8, 4, (8, 8)
    maps = {name: rng.normal(size=(channels, h, w)).astype(np.float32) for name in ("y", "mu", "y_hat")}
    bits = rng.gamma(2.0, 1.0, size=(channels, h, w)).astype(np.float32)
    bits[:, 0, :] = 500.0  # a bright padding row that must not set the colour scale
    return EntropyView(
        model_id=f"{arch}-test", arch=arch, quality=1, rate_quality=None, k=None, width=WIDTH, height=HEIGHT,
        original=random_image(HEIGHT, WIDTH), pad=(14, 14, 29, 29), layout="reference", num_slices=slices,
        y=maps["y"], mu=maps["mu"], sigma=np.abs(maps["mu"]) + 0.11, y_quantized=np.round(maps["y"]),
        y_hat=maps["y_hat"], bits=bits, z_bits=np.ones((4, 2, 2), np.float32),
        hyper_means=torch.zeros(1, channels, h, w), hyper_scales=torch.ones(1, channels, h, w),
    )  # fmt: skip


def test_robust_range_ignores_outliers_and_masked_cells():
    values = np.ones((4, 4))
    values[0, 0] = 1000.0
    mask = np.ones((4, 4), bool)
    mask[0] = False
    assert figures.robust_range(values, mask) == (0.0, 1.0)
    assert figures.robust_range(values)[1] < 1000.0
    assert figures.robust_range(-values, mask, symmetric=True) == (-1.0, 1.0)


def test_entropy_figures_build_from_synthetic_views():
    view, other = _view("gabic", 0), _view("zou2022", 1)
    bars = figures.channel_bits_figure(view)
    assert list(bars.data[0].y) == pytest.approx(view.channel_bits[view.channels_by_bits].tolist())
    maps = figures.channel_maps_figure(view, channel=2)
    rows, cols = view.image_cells
    assert len(maps.data) == 5 and np.asarray(maps.data[4].z).shape == view.bits[2][rows, cols].shape
    assert maps.data[4].zmax < 500.0
    uncropped = figures.channel_maps_figure(view, crop_padding=False)
    assert np.asarray(uncropped.data[0].z).shape == view.latent_shape and len(uncropped.layout.shapes) == 5
    with pytest.raises(ValueError, match="channel"):
        figures.channel_maps_figure(view, channel=99)
    side = figures.max_entropy_figure({"GABIC": view, "Zou2022": other})
    assert len(side.data) == 2 and side.data[0].zmax == side.data[1].zmax
    slices = figures.slice_bits_figure([view, other])
    assert list(slices.data[0].y) == pytest.approx(view.slice_bits.tolist())


def test_progressive_and_adjacency_figures_build_from_synthetic_data():
    images = [random_image(20, 30, seed=s) for s in range(3)]
    decoding = ProgressiveDecoding(model_id="gabic-test", arch="gabic", quality=1, num_slices=2, pixels=600,
                                   steps=[0, 1, 2], reconstructions=images, psnr=[20.0, 25.0, 30.0],
                                   bits=[60.0, 300.0, 600.0])  # fmt: skip
    strip = figures.progressive_strip_figure(decoding, steps=[0, 2])
    assert len(strip.data) == 2 and "2/2 slices" in strip.layout.annotations[1].text
    curve = figures.progressive_curve_figure([decoding])
    assert list(curve.data[0].x) == pytest.approx([0.1, 0.5, 1.0])
    share = adjacent_edge_share(_synthetic_block(np.zeros((1, 16, 2), np.int64) + 1, 4, 4, 0), 64, 64)
    bars = figures.adjacency_figure({"encoder 1/16": share})
    assert list(bars.data[1].y) == pytest.approx([share.random_share])
