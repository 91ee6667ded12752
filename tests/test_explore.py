"""gabic.explore: input preparation, weights source, cached analyses and the data of every view."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import random_image
from PIL import Image

from app import service as explore
from gabic import inspect as gabic_inspect
from gabic.codec.images import ImageInputError

SIZE = (192, 128)  # width, height: small enough for two cores, big enough for 1/16 windows


@pytest.fixture(scope="module")
def explorer(weights_env: Path) -> explore.Explorer:
    return explore.Explorer(explore.WeightsSource(device="cpu"), max_entries=16)


@pytest.fixture(scope="module")
def prepared() -> explore.PreparedImage:
    return explore.prepare_image(random_image(SIZE[1], SIZE[0], seed=3), max_side=None)


@pytest.fixture(scope="module")
def pair(explorer: explore.Explorer, prepared: explore.PreparedImage) -> explore.Pair:
    return explorer.pair(prepared, 1)


def _png(image: Image.Image, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save_args.pop("format", "PNG"), **save_args)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- input
def test_prepare_image_downscales_with_a_note() -> None:
    big = random_image(300, 600, seed=1)
    prepared = explore.prepare_image(_png(big), max_side=200)
    assert prepared.size == (200, 100)
    assert prepared.original_size == (600, 300)
    assert prepared.resized and "downscaled" in prepared.describe()
    assert any("downscaled" in note for note in prepared.notes)


def test_image_key_depends_on_pixels_only() -> None:
    image = random_image(40, 50, seed=2)
    assert explore.image_key(image) == explore.image_key(image.copy())
    assert explore.image_key(image) == explore.prepare_image(_png(image)).key
    assert explore.image_key(image) != explore.image_key(random_image(40, 50, seed=5))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: Image.new("L", (40, 30), 128), "grayscale"),
        (lambda: Image.new("RGBA", (40, 30), (255, 0, 0, 100)), "transparency"),
        (lambda: Image.fromarray(np.full((30, 40), 40000, dtype=np.uint16)), "8 bits"),
    ],
)
def test_prepare_image_notes_conversions(make, expected: str) -> None:
    prepared = explore.prepare_image(_png(make()))
    assert prepared.image.mode == "RGB"
    assert any(expected in note for note in prepared.notes), prepared.notes


def test_prepare_image_honours_exif_orientation() -> None:
    image = random_image(30, 60, seed=4)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = _png(image, format="JPEG", exif=exif.tobytes())
    prepared = explore.prepare_image(data)
    assert prepared.size == (30, 60)
    assert any("EXIF" in note for note in prepared.notes)


@pytest.mark.parametrize("data", [b"", b"definitely not an image", _png(random_image(30, 30))[:60]])
def test_prepare_image_refuses_bad_input(data: bytes) -> None:
    with pytest.raises(ImageInputError):
        explore.prepare_image(data)


def test_samples_are_bundled() -> None:
    for name in explore.SAMPLES:
        assert explore.sample_image(name).mode == "RGB"
    with pytest.raises(KeyError):
        explore.sample_image("nope")


# -------------------------------------------------------------------------- weights
def test_no_weights_is_a_clear_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(tmp_path / "empty"))
    source = explore.WeightsSource(device="cpu")
    assert source.common_qualities() == []
    assert "No weights found" in source.problem()
    assert "--checkpoints" in source.problem()


def test_checkpoint_folder_layout_is_detected(tmp_path: Path, weights_env: Path) -> None:
    (tmp_path / "gabic").mkdir()
    for quality in (1, 2):
        (tmp_path / "gabic" / f"q{quality}-model.pth.tar").write_bytes(b"placeholder")
    source = explore.WeightsSource(tmp_path, device="cpu")
    assert source.origin("gabic") == "checkpoints" and source.qualities("gabic") == [1, 2]
    assert source.origin("zou2022") == "shipped" and source.qualities("zou2022") == [1, 2, 3, 4]
    assert source.common_qualities() == [1, 2]
    assert "authors' checkpoints" in source.description()["gabic"]
    assert "shipped" in source.description()["zou2022"]


# ------------------------------------------------------------------------- analyses
def test_analyses_are_cached_per_quality_and_k(
    explorer: explore.Explorer, prepared: explore.PreparedImage, pair: explore.Pair
) -> None:
    assert explorer.pair(prepared, 1).gabic is pair.gabic
    assert explorer.is_pair_cached(prepared, 1)
    assert pair.gabic.k == explorer.trained_k() and pair.zou2022.k is None
    assert explorer.cached(prepared, "gabic", 1, k=3) is None
    assert explorer.k_range() == (1, 15)


def test_same_request_from_two_threads_is_computed_once(
    explorer: explore.Explorer, prepared: explore.PreparedImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = explore.analyze

    def counting(*args, **kwargs):
        calls.append(kwargs.get("k"))
        return original(*args, **kwargs)

    monkeypatch.setattr(explore, "analyze", counting)
    results = []
    threads = [threading.Thread(target=lambda: results.append(explorer.analysis(prepared, "gabic", 1, k=4)))
               for _ in range(3)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(calls) == 1 and len(results) == 3
    assert all(r is results[0] for r in results) and results[0].k == 4


def test_cache_is_bounded(weights_env: Path, prepared: explore.PreparedImage) -> None:
    small = explore.Explorer(explore.WeightsSource(device="cpu"), max_entries=2)
    image = explore.prepare_image(random_image(64, 64, seed=9))
    for k in (1, 2, 3):
        small.analysis(image, "gabic", 1, k=k, inspect_attention=False)
    assert len(small._cache) == 2
    assert small.cached(image, "gabic", 1, k=1, inspect_attention=False) is None


def test_metrics_rows_and_bit_maps(pair: explore.Pair) -> None:
    rows = explore.metrics_rows(pair)
    assert [r[0].split(" ")[0] for r in rows] == ["GABIC", "Zou2022"]
    assert rows[0][1] == round(pair.gabic.bpp, 4) and len(rows[0]) == len(explore.METRIC_HEADERS)
    maps = explore.bit_maps(pair)
    assert maps.gabic.shape == (SIZE[1], SIZE[0])
    assert maps.totals["gabic"] == pytest.approx(pair.gabic.bits_estimated, rel=1e-4)
    assert maps.totals["zou2022"] == pytest.approx(pair.zou2022.bits_estimated, rel=1e-4)
    np.testing.assert_allclose(maps.difference, maps.gabic - maps.zou2022)
    assert maps.vmax > 0 and maps.dmax > 0
    y, z = explore.bit_maps(pair, "y"), explore.bit_maps(pair, "z")
    assert y.totals["gabic"] + z.totals["gabic"] == pytest.approx(maps.totals["gabic"], rel=1e-4)
    assert "GABIC" in explore.bit_summary(maps)
    with pytest.raises(ValueError):
        explore.bit_maps(pair, "w")


@pytest.mark.parametrize("block_name", explore.BLOCKS)
def test_neighbour_rows_and_score_anatomy(pair: explore.Pair, block_name: str) -> None:
    block = pair.gabic.blocks[block_name]
    x, y = 70.0, 50.0
    rows = explore.neighbour_rows(block, x, y)
    assert len(rows) == block.k
    assert [r["rank"] for r in rows] == list(range(1, block.k + 1))
    assert all(a["alpha_mean"] >= b["alpha_mean"] for a, b in zip(rows, rows[1:], strict=False))
    alpha = np.array([r["alpha"] for r in rows])  # (k, heads)
    np.testing.assert_allclose(alpha.sum(0), 1.0, atol=1e-4)
    headers, values = explore.neighbour_table(rows, block.heads)
    assert len(values) == block.k and len(headers) == len(values[0]) == 7 + block.heads
    # the softmax of q·k + edge parts over the node's edges gives back alpha
    edges = block.neighbours_of(x, y)
    scores = torch.tensor(
        [[h["score"] for h in explore.score_anatomy(block, x, y, s)] for s in range(len(edges))]
    )
    torch.testing.assert_close(
        scores.softmax(0), torch.tensor([e["alpha"] for e in edges]), atol=1e-4, rtol=1e-3
    )
    with pytest.raises(ValueError):
        explore.score_anatomy(block, x, y, block.k)


def test_all_heads_grid(pair: explore.Pair) -> None:
    grid = explore.all_heads(pair.gabic, 20, 30)
    assert list(grid) == list(explore.BLOCKS)
    for name, maps in grid.items():
        block = pair.gabic.blocks[name]
        assert maps.shape == (block.heads + 1, block.window, block.window)
        np.testing.assert_allclose(maps[-1], maps[:-1].mean(0), atol=1e-5)
        assert (maps[:-1] > 0).reshape(block.heads, -1).sum(1).max() <= block.k
    zou = explore.all_heads(pair.zou2022, 20, 30)
    np.testing.assert_allclose(zou["encoder 1/4"][:-1].sum((1, 2)), 1.0, atol=1e-2)


def test_node_summary_and_clamp(pair: explore.Pair) -> None:
    assert explore.clamp_point(SIZE, -5, 1e6) == (0.0, SIZE[1] - 1.0)
    node = explore.node_summary(pair.gabic.blocks["encoder 1/16"], 100, 60)
    assert node["block"] == "encoder 1/16" and 0 <= node["node"] < 16
    assert explore.head_index("mean") is None and explore.head_index("3") == 2


def test_figures_and_inspector_image(pair: explore.Pair) -> None:
    maps = explore.bit_maps(pair)
    for which in ("gabic", "zou2022", "difference"):
        fig = explore.bits_figure(maps, which)
        assert fig.data[0].type == "heatmap"
    assert (
        explore.bits_figure(maps, "gabic").data[0].zmax == explore.bits_figure(maps, "zou2022").data[0].zmax
    )
    assert explore.bits_figure(maps, "difference").data[0].zmid == 0
    assert len(explore.window_attention_figure(pair, "encoder 1/4", 10, 10, None).data) == 4
    assert len(explore.all_heads_figure(explore.all_heads(pair.gabic, 10, 10)).data) == 4 * 9
    block = pair.gabic.blocks["decoder 1/4"]
    assert len(explore.anatomy_figure(explore.score_anatomy(block, 10, 10, 0)).data) == 3
    scale = explore.display_scale(SIZE)
    picture = explore.inspector_image(pair.gabic, "decoder 1/4", 10, 10, 2, scale)
    assert picture.size == (SIZE[0] * scale, SIZE[1] * scale)
    # the clicked node is drawn in red at its cell centre
    cx, cy = block.cell_centre(*block.cell_at(10, 10))
    r, g, b = picture.getpixel((int(cx * scale), int(cy * scale)))
    assert r > 200 and g < 100 and b < 100


def test_rd_points_and_k_sweep(
    explorer: explore.Explorer, prepared: explore.PreparedImage, pair: explore.Pair
) -> None:
    points = explorer.rd_points(prepared, classic=False)
    assert {(p["method"], p["quality"]) for p in points} == {
        (m, q) for m in ("GABIC", "Zou2022") for q in (1, 2, 3, 4)
    }
    assert {(p["method"], p["quality"]) for p in explorer.known_rd_points(prepared)} >= {
        ("GABIC", 1),
        ("Zou2022", 1),
    }
    fig = explore.rd_figure(points, {"quality": 1})
    assert fig.data[-1].name == "current" and len(fig.data[-1].x) == 2
    seen = []
    rows = explorer.k_sweep(prepared, 1, ks=[1, 2], progress=lambda f, m: seen.append(m))
    assert [r["k"] for r in rows] == [1, 2] and seen[-1] == "done"
    assert all(r["bpp"] > 0 for r in rows)
    assert len(explore.k_sweep_figure(rows, 9).data) == 2


def test_classic_points_when_available(explorer: explore.Explorer, prepared: explore.PreparedImage) -> None:
    pytest.importorskip("gabic.classic", reason="gabic.classic (JPEG/WebP/AVIF) is not there yet")
    points = explorer.classic_points(prepared, "jpeg")
    assert points and all(p["method"] == "JPEG" and p["bpp"] > 0 for p in points)


def test_html_report_is_self_contained(pair: explore.Pair, prepared: explore.PreparedImage) -> None:
    maps = explore.bit_maps(pair)
    page = explore.html_report(
        pair, prepared, {"quality": "q1", "k": 9}, {"Bits": explore.bits_figure(maps, "gabic")},
        tables={"Extra": (["a"], [[1]])}, weights={"gabic": "random <test> weights"},
    )  # fmt: skip
    assert page.startswith("<!DOCTYPE html>")
    assert "<script src" not in page.replace(" ", "").lower().replace("<scriptsrc", "<script src")
    assert "data:image/png;base64," in page and page.count("<img") == 3
    assert "Plotly.newPlot" in page and "random &lt;test&gt; weights" in page
    assert "Bits" in page and "Extra" in page


def test_analysis_matches_gabic_inspect(explorer: explore.Explorer, pair: explore.Pair, prepared) -> None:
    model = explorer.source.load("zou2022", 1)
    direct = gabic_inspect.analyze(model, prepared.image, inspect_attention=False)
    assert direct.data == pair.zou2022.data


@pytest.mark.parametrize("side", [1, 40, 160, 257, 384, 511, 512, 1024])
def test_display_scale_fills_the_inspector_panel(side: int) -> None:
    """Browsers shrink but never enlarge the inspector picture, so small images are upscaled
    (by an integer, pixels stay sharp) to at least 512 px on the long side, up to 4x."""
    scale = explore.display_scale((side, max(1, side * 2 // 3)))
    assert isinstance(scale, int) and 1 <= scale <= 4
    assert side * scale >= 512 or scale == 4
    assert scale == 1 or side * (scale - 1) < 512
