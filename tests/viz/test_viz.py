"""gabic.viz: every view builds from small data and draws what it was given."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import plotly  # noqa: F401 - required (requirements.txt): missing, these tests must fail, not skip
import pytest
import torch
from helpers import random_image, tiny_codecs

from gabic import viz
from gabic.inspect import analyze

ROOT = Path(__file__).resolve().parents[2]
SIZE = (96, 64)  # width, height of the analysed image


@pytest.fixture(scope="module")
def analyses() -> tuple:
    """Tiny random GABIC and Zou2022 analyses of one generated image (with attention)."""
    image = random_image(SIZE[1], SIZE[0], seed=7)
    models = tiny_codecs(seed=1)
    return analyze(models["gabic"], image), analyze(models["zou2022"], image)


# --------------------------------------------------------------------------- pooling
def test_pool_mean_keeps_every_pixel() -> None:
    values = np.random.default_rng(0).random((13, 10))
    pooled = viz.pool_mean(values, 4)
    assert pooled.shape == (4, 3)
    assert pooled[0, 0] == pytest.approx(values[:4, :4].mean())
    assert pooled[3, 2] == pytest.approx(values[12:, 8:].mean())  # a 1×2 corner cell: its own pixels only
    rows = np.diff([0, 4, 8, 12, 13])
    cols = np.diff([0, 4, 8, 10])
    assert (pooled * np.outer(rows, cols)).sum() == pytest.approx(values.sum())
    np.testing.assert_array_equal(viz.pool_mean(values, 1), values)


# ------------------------------------------------------------------------- heat maps
def test_maps_figure_shares_one_scale() -> None:
    a, b = np.arange(12.0).reshape(3, 4), np.full((3, 4), 2.0)
    fig = viz.maps_figure([a, b], ["a", "b"])
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), a)
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == 11.0
    diverging = viz.maps_figure([a - 5], ["d"], diverging=True, limit=3.0)
    assert (diverging.layout.coloraxis.cmin, diverging.layout.coloraxis.cmax) == (-3.0, 3.0)


def test_maps_figure_pools_large_maps_in_pixel_coordinates() -> None:
    big = np.random.default_rng(1).random((50, 70))
    fig = viz.maps_figure([big], ["big"], max_cells=20)
    z = np.asarray(fig.data[0].z)
    np.testing.assert_allclose(z, viz.pool_mean(big, 4))  # ceil(70 / 20) = 4
    assert z.shape == (13, 18)
    assert fig.data[0].x[0] == pytest.approx(1.5) and fig.data[0].y[-1] == pytest.approx(49.5)


def test_images_figure_lays_out_a_grid() -> None:
    pictures = [random_image(10, 12, seed=s) for s in range(3)]
    fig = viz.images_figure(pictures, ["a", "b", "c"], cols=2, height=100)
    assert [t.type for t in fig.data] == ["image"] * 3
    assert all(t.source.startswith("data:image/png;base64,") for t in fig.data)
    assert fig.layout.height == 200


def test_bit_maps_and_their_figures(analyses: tuple) -> None:
    gabic, zou = analyses
    maps = viz.bit_maps(gabic, zou)
    assert maps.labels == ("GABIC", "Zou2022") and maps.first.shape == (SIZE[1], SIZE[0])
    assert maps.totals["first"] == pytest.approx(gabic.bits_estimated, rel=1e-4)
    assert maps.totals["second"] == pytest.approx(zou.bits_estimated, rel=1e-4)
    np.testing.assert_allclose(maps.difference, maps.first - maps.second)
    y, z = viz.bit_maps(gabic, zou, "y"), viz.bit_maps(gabic, zou, "z")
    assert y.totals["first"] + z.totals["first"] == pytest.approx(maps.totals["first"], rel=1e-4)
    pooled = viz.pool_mean(maps.first, 4)  # 96 px / 4: every cell full
    assert pooled.shape == (SIZE[1] // 4, SIZE[0] // 4)
    assert pooled.sum() * 16 == pytest.approx(maps.totals["first"], rel=1e-5)
    assert "GABIC" in viz.bit_summary(maps) and "Zou2022" in viz.bit_summary(maps)
    x, y = 20, 10
    assert viz.bits_at(analyses, x, y) == (
        f"GABIC {gabic.bits_per_pixel_map[y, x]:.3f}, Zou2022 {zou.bits_per_pixel_map[y, x]:.3f}"
    )
    with pytest.raises(ValueError):
        viz.bit_maps(gabic, zou, "w")


# ------------------------------------------------------------------------------- RD
def test_rd_figure_draws_each_curve_in_rate_order() -> None:
    curves = {
        "GABIC": {"bpp": [0.5, 0.2, 0.9], "psnr": [31.0, 28.0, 34.0], "label": ["q2", "q1", "q3"]},
        "JPEG": {"bpp": [0.3, 0.8], "psnr": [26.0, 30.0], "ms_ssim_db": [None, None]},
    }
    fig = viz.rd_figure(curves, metrics=("psnr", "ms_ssim_db"), marked={"GABIC": "q2"})
    lines = {t.name: t for t in fig.data if t.name != "current"}
    assert list(lines["GABIC"].x) == [0.2, 0.5, 0.9] and list(lines["GABIC"].y) == [28.0, 31.0, 34.0]
    assert list(lines["GABIC"].text) == ["q1", "q2", "q3"]
    assert lines["GABIC"].line.color == "#d62728" and lines["JPEG"].line.dash == "dot"
    ring = next(t for t in fig.data if t.name == "current")
    assert (list(ring.x), list(ring.y)) == ([0.5], [31.0])
    assert len(fig.layout.annotations) == 0  # no MS-SSIM values: one panel, no subplot titles
    both = viz.rd_figure({"a": {"bpp": [0.1, 0.2], "psnr": [30, 32], "ms_ssim_db": [10.0, None]}},
                         metrics=("psnr", "ms_ssim_db"), panel_width=500)  # fmt: skip
    assert [t.xaxis for t in both.data] == ["x", "x2"] and list(both.data[1].x) == [0.1]
    assert both.layout.width == 1000


def test_points_to_curves_groups_by_method() -> None:
    points = [
        {"method": "GABIC", "quality": q, "bpp": 0.1 * q, "psnr": 25.0 + q, "ms_ssim": 0.9} for q in (1, 2)
    ]
    points.append({"method": "JPEG", "quality": 50, "bpp": 0.4, "psnr": 27.0, "ms_ssim": float("nan")})
    curves = viz.points_to_curves(points)
    assert list(curves) == ["GABIC", "JPEG"]
    assert curves["GABIC"]["bpp"] == [0.1, 0.2] and curves["GABIC"]["label"] == ["q1", "q2"]
    fig = viz.rd_figure(curves, metrics=("ms_ssim",))
    assert [t.name for t in fig.data] == ["GABIC"]  # JPEG's only MS-SSIM is NaN


def test_k_sweep_figure() -> None:
    rows = [{"k": k, "bpp": 0.1 * k, "psnr": 30.0 - k} for k in (1, 2, 3)]
    fig = viz.k_sweep_figure(rows, trained_k=2)
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].y) == pytest.approx([0.1, 0.2, 0.3])
    assert list(fig.data[1].y) == [29.0, 28.0, 27.0]


@pytest.mark.slow  # the PNG is drawn by kaleido in Chromium when both are installed: seconds
def test_save_figure_writes_html(tmp_path: Path) -> None:
    saved = viz.save_figure(
        viz.k_sweep_figure([{"k": 1, "bpp": 0.1, "psnr": 30.0}], None), tmp_path / "f.png"
    )
    assert saved["html"] == str(tmp_path / "f.html") and "<html>" in Path(saved["html"]).read_text()
    assert (saved["png"] is None) == (saved["png_error"] is not None)


# ------------------------------------------------------------------------ attention
def test_neighbour_rows_and_score_anatomy(analyses: tuple) -> None:
    block = analyses[0].blocks["encoder 1/4"]
    x, y = 40.0, 30.0
    rows = viz.neighbour_rows(block, x, y)
    assert [r["rank"] for r in rows] == list(range(1, block.k + 1))
    assert all(a["alpha_mean"] >= b["alpha_mean"] for a, b in zip(rows, rows[1:], strict=False))
    np.testing.assert_allclose(np.array([r["alpha"] for r in rows]).sum(0), 1.0, atol=1e-4)
    headers, values = viz.neighbour_table(rows, block.heads)
    assert len(values) == block.k and len(headers) == len(values[0]) == 7 + block.heads
    scores = torch.tensor([[h["score"] for h in viz.score_anatomy(block, x, y, s)] for s in range(block.k)])
    alpha = torch.tensor([e["alpha"] for e in block.neighbours_of(x, y)])
    torch.testing.assert_close(scores.softmax(0), alpha, atol=1e-4, rtol=1e-3)
    with pytest.raises(ValueError):
        viz.score_anatomy(block, x, y, block.k)
    node = viz.node_summary(block, x, y)
    assert (node["window"], node["node"]) == block.node_at(x, y)


def test_attention_figures_show_their_input(analyses: tuple) -> None:
    gabic, zou = analyses
    from gabic.viz.pictures import TITLE_PX, colour_indices, colour_table

    picture = np.asarray(viz.window_attention_picture(analyses, "decoder 1/4", 20, 10, head=1, side=64))
    maps = [a.blocks["decoder 1/4"].attention_map(20, 10, 1) for a in analyses]
    top = max(float(m.max()) for m in maps)
    left = 0
    for analysis, values in zip(analyses, maps, strict=True):
        block = analysis.blocks["decoder 1/4"]
        cell = max(2, 64 // block.window)
        _, node = block.node_at(20, 10)
        expected = colour_table("Magma")[colour_indices(values, top, diverging=False)]
        for row in range(block.window):
            for col in range(block.window):
                if row * block.window + col == node:
                    continue  # crossed
                drawn = picture[TITLE_PX + 18 + row * cell + cell // 2, left + col * cell + cell // 2]
                assert drawn.tolist() == expected[row, col].tolist()
        left += block.window * cell + 16
    grid = viz.all_heads(gabic, 20, 10)
    for name, maps in grid.items():
        np.testing.assert_allclose(maps[-1], maps[:-1].mean(0), atol=1e-5)
        assert maps.shape[0] == gabic.blocks[name].heads + 1
    heads_fig = viz.all_heads_figure(grid)
    columns = next(iter(grid.values())).shape[0]
    assert len(heads_fig.data) == len(grid) * columns
    np.testing.assert_allclose(np.asarray(heads_fig.data[columns].z), grid[list(grid)[1]][0])
    rows = [{"head": h, "qk": 0.5 * h, "edge": -0.1, "score": 0.5 * h - 0.1, "alpha": 0.2} for h in (1, 2)]
    anatomy = viz.anatomy_figure(rows, "edge 0")
    assert list(anatomy.data[0].y) == [0.5, 1.0] and list(anatomy.data[1].y) == [-0.1, -0.1]


# ------------------------------------------------------------------------- overlays
@pytest.mark.parametrize("side", [1, 40, 160, 257, 511, 512, 1024])
def test_display_scale_fills_the_inspector_panel(side: int) -> None:
    """Browsers shrink but never enlarge the inspector picture: small images are upscaled by an
    integer (pixels stay sharp) to at least 512 px on the long side, up to 4×."""
    scale = viz.display_scale((side, max(1, side * 2 // 3)))
    assert 1 <= scale <= 4 and (side * scale >= 512 or scale == 4)
    assert scale == 1 or side * (scale - 1) < 512


def test_graph_overlay_draws_the_node_and_its_strongest_edge(analyses: tuple) -> None:
    gabic = analyses[0]
    block = gabic.blocks["encoder 1/4"]
    window, node = block.node_at(30, 20)
    neighbours = [n for n in range(block.window**2) if n != node][:3]
    picture = viz.graph_overlay(gabic.original, block, window, node, neighbours, [0.1, 0.2, 0.7], scale=3)
    assert picture.size == (SIZE[0] * 3, SIZE[1] * 3)
    cx, cy = block.cell_centre(*block.node_to_cell(window, node))
    r, g, b = picture.getpixel((int(cx * 3), int(cy * 3)))
    assert r > 200 and g < 100 and b < 100  # the node: red
    ex, ey = block.cell_centre(*block.node_to_cell(window, neighbours[2]))
    r, g, b = picture.getpixel((int(ex * 3), int(ey * 3)))
    assert r > 200 and g > 200 and b < 100  # the strongest neighbour: the top of Viridis (yellow)
    inspector = viz.inspector_image(gabic, "encoder 1/4", 30, 20, head=None, scale=2)
    assert inspector.size == (SIZE[0] * 2, SIZE[1] * 2)
    assert viz.inspector_image(analyses[1], "encoder 1/4", 30, 20, head=0).size == tuple(SIZE)


# --------------------------------------------------------------------------- report
def test_html_report_is_self_contained(analyses: tuple) -> None:
    rows = viz.metrics_rows(analyses)
    assert [r[0].split(" ")[0] for r in rows] == ["GABIC", "Zou2022"]
    assert rows[0][1] == round(analyses[0].bpp, 4) and len(rows[0]) == len(viz.METRIC_HEADERS)
    assert rows[0][4] is None  # MS-SSIM is undefined below 161 px
    page = viz.html_report(
        analyses, {"quality": "q1"}, {"RD": viz.k_sweep_figure([{"k": 1, "bpp": 0.1, "psnr": 30.0}], 1)},
        tables={"Extra": (["a"], [[1]])}, weights={"GABIC": "random <test> weights"}, about=["a 96×64 image"],
    )  # fmt: skip
    assert page.startswith("<!DOCTYPE html>") and "<script src" not in page
    assert page.count("<img src='data:image/png;base64,") == 3
    assert "Plotly.newPlot" in page and "random &lt;test&gt; weights" in page
    assert "Extra" in page and "a 96×64 image" in page


# --------------------------------------------------------------------------- layout
def test_viz_never_imports_the_app_and_modules_stay_short() -> None:
    for path in sorted((ROOT / "gabic").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not any(n == "app" or n.startswith("app.") for n in names), f"{path} imports the app"
    for path in [*(ROOT / "gabic" / "viz").glob("*.py"), *(ROOT / "app").glob("*.py")]:
        assert len(path.read_text().splitlines()) < 400, f"{path.name} is over 400 lines"
