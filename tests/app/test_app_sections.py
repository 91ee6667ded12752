"""The sections opened on request (entropy model, progressive decoding, window graph, classic codecs
at the same size, equal rate), shareable links, the codec diagram and the variable-rate quality, on
random weights (both the one-rate and the variable-rate families)."""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio  # noqa: E402,F401  (a missing gradio fails the tests instead of skipping them)
import numpy as np
import pytest
from helpers import random_image
from PIL import Image

from app import sections  # noqa: E402
from app.diagram import codec_diagram  # noqa: E402
from app.handlers import App  # noqa: E402
from app.inputs import SAMPLES  # noqa: E402
from app.links import link_query, parse_link  # noqa: E402
from app.service import BLOCKS, Explorer  # noqa: E402
from app.session import Controls, quality_label  # noqa: E402
from app.ui import build_demo  # noqa: E402
from app.weights import WeightsSource  # noqa: E402
from gabic import viz  # noqa: E402
from gabic.viz.maps import interior_box  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:gradio.helpers")
HEADS = ["mean", *[str(h) for h in range(1, 9)]]


def _app(family: str, tmp: Path) -> App:
    return App(Explorer(WeightsSource(device="cpu", family=family)), max_side=160, export_dir=tmp)


@pytest.fixture(scope="module", params=["variable-rate", "one-rate"])
def loaded(request: pytest.FixtureRequest, weights_env: Path, tmp_path_factory: pytest.TempPathFactory):
    app = _app(request.param, tmp_path_factory.mktemp("reports"))
    quality = 2.5 if request.param == "variable-rate" else 2
    session, _ = app.load_image(random_image(96, 160, seed=5), quality, 9, BLOCKS[0], "mean", "total")
    return app, session, quality


def test_family_choice_and_quality(weights_env: Path) -> None:
    variable, fixed = WeightsSource(device="cpu"), WeightsSource(device="cpu", family="one-rate")
    assert variable.variable_rate() and not fixed.variable_rate()  # auto: both variable-rate files exist
    assert variable.shipped_name("gabic") == "gabic-small-vr" and fixed.shipped_name("gabic") == "gabic-small"
    assert variable.check_quality("gabic", 2.3449) == 2.34 and variable.check_quality("gabic", 3.0) == 3
    with pytest.raises(ValueError, match="1..4"):
        variable.check_quality("gabic", 4.5)
    with pytest.raises(ValueError, match="no weights for quality"):
        fixed.check_quality("gabic", 2.5)
    assert quality_label(2.5) == "q2.5" and quality_label(3.0) == "q3"
    assert Controls.read("2.349", 9, BLOCKS[0], "mean").quality == 2.35


def test_variable_rate_quality_changes_the_analysis(loaded) -> None:
    app, session, quality = loaded
    if quality != 2.5:
        pytest.skip("one-rate family")
    low = app.numbers(session, 1.5, 9)["summary"]
    high = app.numbers(session, 3.5, 9)["summary"]
    assert low["quality"] == 1.5 and high["quality"] == 3.5
    assert low["models"]["gabic"]["psnr"] != high["models"]["gabic"]["psnr"]  # each quality its own model


def test_entropy_section(loaded) -> None:
    app, session, quality = loaded
    views = sections.entropy(app.explorer, session, quality, 9, "GABIC")
    view = app.explorer.entropy(session.image, "gabic", quality, 9)
    assert views["channel"]["value"] == view.max_entropy_channel
    assert views["channel"]["maximum"] == view.channels - 1
    assert len(views["max_entropy"].data) == 2 and len(views["channel_maps"].data) == 5
    other = sections.entropy_channel(app.explorer, session, quality, 9, "Zou2022", 3)
    assert "channel 3 " in other["channel_maps"].layout.title.text


def test_progressive_section(loaded) -> None:
    app, session, quality = loaded
    views = sections.progressive(app.explorer, session, quality, 9, 1)
    total = views["slices"]["maximum"]
    assert total >= 2 and views["slices"]["value"] == 1
    assert views["progressive_gabic"]["value"].size == session.image.size
    assert f"1 of {total} slices" in views["progressive_note"]
    assert (
        len(views["progressive_curve"].data) == 2 and len(views["progressive_curve"].data[0].x) == total + 1
    )
    full = sections.progressive(app.explorer, session, quality, 9)  # default: all slices
    reconstruction = app.explorer.pair(session.image, quality, 9).gabic.reconstruction
    assert np.array_equal(np.asarray(full["progressive_gabic"]["value"]), np.asarray(reconstruction))


@pytest.mark.parametrize("all_nodes", [False, True])
def test_graph_section(loaded, all_nodes: bool) -> None:
    app, session, quality = loaded
    views = sections.graph(app.explorer, session, quality, 9, BLOCKS[1], "2", all_nodes)
    rows = views["adjacency"]["data"]
    assert [r[0] for r in rows] == list(BLOCKS) and all(0 <= r[2] <= 1 and 0 < r[3] < 1 for r in rows)
    edges = [t for t in views["window_graph"].data if t.type == "scatter" and t.mode == "lines"]
    drawn = sum(t.x.count(None) for t in edges)
    window = app.explorer.pair(session.image, quality, 9).gabic.blocks[BLOCKS[1]].window
    node_edges = 9 - 1  # a node's own edge (if kNN picks itself) is not drawn as a line
    assert (drawn >= window * window * node_edges) if all_nodes else (node_edges <= drawn <= 9)
    assert views["window_zou"].size[0] > 0  # a picture of Zou2022's attention over the window


def test_same_size_section(loaded) -> None:
    app, session, quality = loaded
    views = sections.same_size(app.explorer, session, quality, 9)
    table = views["same_size_table"]["data"]
    gabic_bpp = app.explorer.pair(session.image, quality, 9).gabic.bpp
    assert table[0][0] == "GABIC" and table[0][2] == round(gabic_bpp, 4)
    for row in table[1:]:
        assert row[4] != "yes" or row[2] <= gabic_bpp + 1e-9  # a codec that fits is not larger
    assert views["same_jpeg"]["value"][0].size == session.image.size


def test_equal_rate_section(loaded) -> None:
    app, session, quality = loaded
    views = sections.equal_rate(app.explorer, session, 2.5)
    gabic, zou = views["equal_rate_table"]["data"]
    assert gabic[0] == "GABIC" and gabic[1] == "q2.5" and zou[0] == "Zou2022"
    result = app.explorer.equal_rate(session.image, 2.5)
    assert zou[1] == f"q{result.search.quality:g}" and zou[2] == round(result.matched.bpp, 4)
    assert gabic[2] == round(result.reference.bpp, 4) and result.search.target_bpp == result.reference.bpp
    assert "better at the same rate" in views["equal_rate_note"]
    assert views["eq_bits_diff"].size[0] == session.image.size[0]  # drawn into the photo


def test_equal_rate_without_variable_rate_files(random_weights_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    folder = tmp_path / "weights"
    folder.mkdir()
    for path in random_weights_dir.iterdir():
        if "-vr" not in path.name:
            shutil.copy(path, folder / path.name)
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(folder))
    app = _app("auto", tmp_path)
    assert not app.explorer.source.variable_rate()
    session, _ = app.load_image(random_image(64, 96, seed=2), 1, 9, BLOCKS[0], "mean", "total")
    views = sections.equal_rate(app.explorer, session, 2)
    assert "gabic-small-vr" in views["equal_rate_note"] and "not in" in views["equal_rate_note"]


def test_bit_maps_are_readable(loaded) -> None:
    app, session, quality = loaded
    pair = app.explorer.pair(session.image, quality, 9)
    maps = viz.bit_maps(pair.gabic, pair.zou2022)
    x0, y0, x1, y1 = maps.interior
    assert maps.limit == pytest.approx(
        max(np.percentile(m[y0:y1, x0:x1], 99) for m in (maps.first, maps.second))
    )
    faint, strong = (app.redraw_bits(session, quality, 9, "y", o)["bits_zou"] for o in (0.0, 1.0))
    photo = np.asarray(session.image.image.convert("RGB"), dtype=float)
    height = photo.shape[0]
    top = viz.pictures.TITLE_PX
    faint_map = np.asarray(Image.open(faint), dtype=float)[top : top + height]
    strong_map = np.asarray(Image.open(strong), dtype=float)[top : top + height]
    # opacity 0 shows the photo (up to JPEG's loss on a noise photo), opacity 1 the map alone
    assert np.abs(faint_map - photo).mean() < 0.5 * np.abs(strong_map - photo).mean()


def test_interior_box() -> None:
    # 481×321 is padded to 512×384; reference layout: 15/16 px left/right, 31/32 px top/bottom, the
    # outermost cells on each side are left out
    assert interior_box(321, 481, 16, "reference") == (1, 1, 465, 305)
    assert interior_box(321, 481, 64, "reference") == (49, 33, 433, 289)
    # compact layout (the codec's default): all padding right and below, so only those sides shrink
    assert interior_box(321, 481, 16) == (0, 0, 480, 320)
    assert interior_box(321, 481, 64) == (0, 0, 448, 320)
    assert interior_box(128, 192, 16) == (0, 0, 192, 128)  # no padding: the whole photo


def test_links_round_trip() -> None:
    query = link_query("coffee", 2.5, 7, BLOCKS[1], "3", (120.4, 80.6))
    assert query == "?sample=coffee&q=2.5&k=7&block=encoder+1%2F16&head=3&x=120&y=81"
    from urllib.parse import parse_qsl

    params = dict(parse_qsl(query[1:]))
    link = parse_link(params, SAMPLES, BLOCKS, HEADS, (1, 4), (1, 15), continuous=True)
    assert (link.sample, link.quality, link.k, link.block, link.head, link.point) == \
        ("coffee", 2.5, 7, BLOCKS[1], "3", (120.0, 81.0))  # fmt: skip
    assert link.notes == []
    fixed = parse_link({"q": "2.5"}, SAMPLES, BLOCKS, HEADS, (1, 4), (1, 15), continuous=False)
    assert fixed.quality in (2, 3) and isinstance(fixed.quality, int)


def test_bad_links_are_ignored_with_a_note() -> None:
    params = {"sample": "../etc/passwd", "q": "nan", "k": "99", "block": "x", "head": "12", "x": "5"}
    link = parse_link(params, SAMPLES, BLOCKS, HEADS, (1, 4), (1, 15), continuous=True)
    assert (link.sample, link.quality, link.k, link.block, link.head, link.point) == (None,) * 6
    assert len(link.notes) == 6


def test_diagram_names_every_view() -> None:
    html = codec_diagram()
    assert html.count("<rect") == 11
    for view in ("Graph inspector", "Entropy model", "Progressive decoding", "Bit allocation",
                 "Classic codecs at the same size", "Equal rate", "Window as a graph"):  # fmt: skip
        assert view in html


def test_demo_builds_with_sections(loaded) -> None:
    app, session, _ = loaded
    demo = build_demo(app, session.image, "astronaut")
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    for elem in ("sec_entropy", "sec_progressive", "sec_graph", "sec_same_size", "sec_equal_rate", "share",
                 "opacity", "channel", "slices", "all_nodes"):  # fmt: skip
        assert elem in ids


def test_pictures_are_lossless_files_written_once(loaded) -> None:
    app, session, quality = loaded
    first = app.render(session, quality, 9, BLOCKS[0], "mean")
    again = app.render(session, quality, 9, BLOCKS[0], "mean")
    assert first["slider_gabic"] == again["slider_gabic"]  # the same files: nothing encoded twice
    reconstruction = app.explorer.pair(session.image, quality, 9).gabic.reconstruction
    shown = Image.open(first["slider_gabic"][1])
    assert shown.format == "PNG" and np.array_equal(
        np.asarray(shown.convert("RGB")), np.asarray(reconstruction)
    )


def test_all_heads_section(loaded) -> None:
    app, session, quality = loaded
    figure = sections.all_heads(app.explorer, session, quality, 9)["all_heads"]
    assert len([t for t in figure.data if t.type == "heatmap"]) == len(BLOCKS) * (
        8 + 1
    )  # heads and their mean
