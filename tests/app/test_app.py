"""The app's handlers, called directly (no browser, no server)."""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from pathlib import Path

import gradio  # noqa: E402,F401  (a missing gradio fails the tests instead of skipping them)
import numpy as np
import pytest
from helpers import random_image, write_authors_checkpoints
from PIL import Image

from app import messages, prefetch, service  # noqa: E402
from app.handlers import INSPECTOR_PART, VIEWS, App  # noqa: E402
from app.inputs import image_key  # noqa: E402
from app.messages import guarded  # noqa: E402
from app.service import Explorer  # noqa: E402
from app.session import Session  # noqa: E402
from app.ui import MAX_FILE_SIZE, build_demo  # noqa: E402
from app.weights import WeightsSource  # noqa: E402
from gabic import viz  # noqa: E402
from gabic.codec.images import ImageInputError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:gradio.helpers")
CONTROLS = dict(quality=1, k=9, block="encoder 1/4", head="mean", part="total")


@pytest.fixture(scope="module")
def app(weights_env: Path, tmp_path_factory: pytest.TempPathFactory) -> App:
    explorer = Explorer(WeightsSource(device="cpu"))
    return App(explorer, max_side=192, export_dir=tmp_path_factory.mktemp("reports"))


def _png_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "photo.png"
    random_image(128, 192, seed=11).save(path)
    return path


@pytest.fixture(scope="module")
def loaded(app: App, photo: Path) -> tuple[Session, dict]:
    return app.load_image(str(photo), **CONTROLS)


def test_upload_renders_every_view(app: App, loaded: tuple[Session, dict], photo: Path) -> None:
    session, views = loaded
    assert set(VIEWS) <= set(views)
    assert isinstance(session, Session)
    assert session.image.size == (192, 128) and session.point == (96, 64)
    assert views["status"].startswith("Analysed 192×128")
    summary = app.numbers(session, CONTROLS["quality"], CONTROLS["k"])["summary"]  # the Numbers section
    assert summary["image"]["key"] == image_key(Image.open(photo).convert("RGB"))
    assert len(views["metrics"]) == 2
    assert len(views["neighbours"]["data"]) == 9
    original, reconstruction = (Image.open(path) for path in views["slider_gabic"])  # lossless PNG files
    assert original.size == reconstruction.size == (192, 128)
    anatomy_controls = [CONTROLS[name] for name in ("quality", "k", "block", "head")]
    edge_choice = app.anatomy(session, *anatomy_controls)["edge_choice"]  # the Score anatomy section
    assert edge_choice["__type__"] == "update" and len(edge_choice["choices"]) == 9
    bits = Image.open(views["bits_gabic"])  # a picture: title, map over the photo, colour bar
    assert bits.format == "JPEG" and bits.width == 192 and bits.height > 128
    assert "Bits per pixel here (y + z): GABIC " in views["node_info"]


def test_the_inspector_can_follow_the_numbers(app: App, loaded: tuple[Session, dict]) -> None:
    """``render(inspector=False)`` leaves out exactly the inspector's views; ``inspect`` draws
    them, the same as a full render (the page shows the numbers first, the inspector next)."""
    session, full = loaded
    first = app.render(session, **CONTROLS, inspector=False)
    assert set(first) == set(full) - set(INSPECTOR_PART) and set(INSPECTOR_PART) <= set(full)
    assert first["status"] == full["status"] and first["metrics"] == full["metrics"]
    second = app.inspect(session, **CONTROLS)
    assert set(second) == set(INSPECTOR_PART)
    assert second["node_info"] == full["node_info"] and second["neighbours"] == full["neighbours"]
    assert Image.open(second["inspector"]).tobytes() == Image.open(full["inspector"]).tobytes()
    with pytest.raises(ImageInputError, match="upload an image first"):
        app.inspect(None, **CONTROLS)


def test_quality_change_is_cached(
    app: App, loaded: tuple[Session, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _ = loaded
    app.render(session, **{**CONTROLS, "quality": 2})  # computes q2 once
    calls = []
    monkeypatch.setattr(service, "analyze", lambda *a, **k: calls.append(1))
    start = time.perf_counter()
    app.render(session, **CONTROLS)
    app.render(session, **{**CONTROLS, "quality": 2})
    summary = app.numbers(session, 1, CONTROLS["k"])["summary"]
    summary2 = app.numbers(session, 2, CONTROLS["k"])["summary"]
    assert calls == [] and time.perf_counter() - start < 10
    assert summary["quality"] == 1 and summary2["quality"] == 2
    assert summary["models"] != summary2["models"]


def test_k_change_is_marked_out_of_distribution(app: App, loaded: tuple[Session, dict]) -> None:
    session, _ = loaded
    views = app.render(session, **{**CONTROLS, "k": 3})
    assert "out of distribution" in views["status"]
    assert len(views["neighbours"]["data"]) == 3
    assert app.numbers(session, CONTROLS["quality"], 3)["summary"]["k"] == 3


def test_click_moves_the_node(app: App, loaded: tuple[Session, dict]) -> None:
    session, _ = loaded
    scale = viz.display_scale(session.image.size)
    new_session, views = app.click(session, [20 * scale, 100 * scale], 1, 9, "decoder 1/16", "2")
    assert new_session.point == (20.0, 100.0) and session.point == (96, 64)  # old session untouched
    assert len(views["neighbours"]["data"]) == 9
    assert "Clicked (20, 100)" in views["node_info"]
    assert Image.open(views["inspector"]).size == (192 * scale, 128 * scale)
    with pytest.raises(ValueError):
        app.click(session, None, 1, 9, "decoder 1/16", "2")


def test_choose_edge_updates_anatomy(app: App, loaded: tuple[Session, dict]) -> None:
    session, _ = loaded
    new_session, views = app.choose_edge(session, 3, 1, 9, "encoder 1/4", "mean")
    assert new_session.edge == 3 and session.edge == -1
    assert set(views) == {"anatomy", "edge_choice"} and len(views["anatomy"].data) == 3
    assert views["edge_choice"]["value"] == 3


def test_export_writes_a_self_contained_report(app: App, loaded: tuple[Session, dict]) -> None:
    session, _ = loaded
    path = Path(app.export(session, **CONTROLS)["report"])
    page = path.read_text()
    assert path.parent == app.export_dir and path.suffix == ".html"
    assert "data:image/png;base64," in page and "Neighbours of the clicked node" in page
    assert "<script src=" not in page and page.count("Plotly.newPlot") >= 3  # heads, anatomy, RD
    for title in ("Attention over the window", "Bits per pixel: GABIC", "Bit difference"):
        assert title in page  # pictures


def test_rd_and_k_sweep_handlers(
    app: App, loaded: tuple[Session, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _ = loaded
    monkeypatch.setattr(service, "CLASSIC_CODECS", ())
    monkeypatch.setattr(app.explorer.source, "common_qualities", lambda: [1, 2])  # already cached
    fig = app.rate_distortion(session, 1, 9)["rd"]
    assert {trace.name for trace in fig.data} >= {"GABIC", "Zou2022", "current"}
    monkeypatch.setattr(app.explorer, "k_range", lambda: (1, 2))
    assert len(app.k_sweep(session, 1)["k_sweep"].data) == 2


def test_api_metrics_matches_the_ui(app: App, loaded: tuple[Session, dict], photo: Path) -> None:
    session, _ = loaded
    # the API gives the numbers the "Numbers" section shows
    assert app.api_metrics(str(photo), 1, 9) == app.numbers(session, 1, 9)["summary"]


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    files = {
        "text": b"this is not an image",
        "empty": b"",
        "truncated": _png_bytes(random_image(64, 64))[:100],
        "bomb": _png_bytes(Image.new("1", (20000, 20000))),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp / f"{name}.png"
        paths[name].write_bytes(data)
    return paths


def test_bad_input_gives_a_message_not_a_trace(app: App, tmp_path: Path) -> None:
    wrapped = guarded(VIEWS)(app.load_image)
    for name, path in _bad_inputs(tmp_path).items():
        with pytest.raises(ImageInputError):
            app.load_image(str(path), **CONTROLS)
        values = wrapped(str(path), *CONTROLS.values(), flat=True)
        status = values[1 + VIEWS.index("status")]
        assert status.startswith("Problem:") and "Traceback" not in status, name
        assert all(
            v == {"__type__": "update"} for i, v in enumerate(values) if i != 1 + VIEWS.index("status")
        )


@pytest.mark.parametrize(
    ("name", "make", "note"),
    [
        ("gray", lambda: Image.new("L", (96, 64), 90), "grayscale"),
        ("rgba", lambda: Image.new("RGBA", (96, 64), (0, 0, 255, 60)), "transparency"),
        ("deep", lambda: Image.fromarray(np.full((64, 96), 30000, dtype=np.uint16)), "8 bits"),
    ],
)
def test_converted_inputs_are_accepted_with_a_note(app: App, tmp_path: Path, name, make, note) -> None:
    path = tmp_path / f"{name}.png"
    make().save(path)
    session = app.new_session(str(path))
    assert session.image.image.mode == "RGB"
    assert any(note in n for n in session.image.notes)


def test_exif_rotated_input_is_upright(app: App, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / "rotated.jpg"
    random_image(40, 80, seed=2).save(path, exif=exif.tobytes())
    assert app.new_session(str(path)).image.size == (40, 80)


def test_unexpected_errors_are_reported_briefly(app: App) -> None:
    def broken(*args):
        raise RuntimeError("boom")

    values = guarded(("status", "rd"), state=False)(broken)(flat=True)
    assert values[0].startswith("Problem: something went wrong (RuntimeError: boom)")


def test_views_need_an_image_first(app: App) -> None:
    with pytest.raises(ImageInputError, match="upload an image first"):
        app.render(None, **CONTROLS)
    values = guarded(("status", "report"), state=False)(app.export)(None, *CONTROLS.values(), flat=True)
    assert "upload an image first" in values[0]


def test_no_weights_is_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, photo: Path) -> None:
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(tmp_path))
    empty = App(Explorer(WeightsSource(device="cpu")), export_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="No weights found"):
        empty.load_image(str(photo), **CONTROLS)
    demo = build_demo(empty, None)  # the page still builds and shows the problem
    texts = [getattr(block, "value", None) for block in demo.blocks.values()]
    assert any(isinstance(t, str) and t.startswith("Problem: No weights found") for t in texts)


def test_demo_builds_with_an_initial_image(app: App, loaded: tuple[Session, dict]) -> None:
    session, _ = loaded
    demo = build_demo(app, session.image)
    api_names = {dep.api_name for dep in demo.fns.values() if dep.api_name}
    assert {"analyze", "upload"} <= api_names


def test_prefetch_is_bounded(app: App, loaded: tuple[Session, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    session, _ = loaded
    prefetcher = prefetch.Prefetcher(app.explorer, enabled=True, workers=0)
    monkeypatch.setattr(prefetch, "PREFETCH_QUEUE", 5)
    prefetcher.around(session.image, 2, 9)
    planned = prefetcher.planned()
    assert len(planned) == 5
    assert [(t.arch, t.quality, t.k) for t in planned[:2]] == [("gabic", 1.75, 9), ("zou2022", 1.75, 9)]
    assert messages.USER_ERRORS


def test_prefetch_plan_starts_nearest_and_covers_the_slider() -> None:
    positions = prefetch.slider_qualities([1, 2, 3, 4], continuous=True)
    assert positions[:3] == [1, 1.25, 1.5] and positions[-1] == 4 and len(positions) == 13
    assert prefetch.slider_qualities([1, 2, 3, 4], continuous=False) == [1, 2, 3, 4]
    plan = prefetch.prefetch_plan(positions, 2, 9, (1, 15))
    both = ("gabic", "zou2022")
    assert plan[:4] == [(1.75, 9, both), (2.25, 9, both), (2, 10, ("gabic",)), (2, 8, ("gabic",))]
    assert {q for q, k, archs in plan if archs == both} == set(positions) - {2}
    distances = [abs(q - 2) for q, k, archs in plan if archs == both]
    assert distances == sorted(distances)
    assert prefetch.prefetch_plan([1, 2], 1, 15, (1, 15)) == [(2, 15, both), (1, 14, ("gabic",))]
    assert prefetch.prefetch_plan([1, 2], 1, 9, (1, 15), graph_k=False) == [(2, 9, both)]


def test_prefetch_plan_of_the_newest_view_replaces_the_older_ones(
    app: App, loaded: tuple[Session, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new view's plan takes the place of what older views left to do, however much that was
    (a full queue of older tasks once dropped the newest plan); a task taken from an older plan
    is skipped; the newest plan's analyses each run once, nearest first."""
    session, _ = loaded
    newer = app.new_session(random_image(48, 64, seed=77)).image
    prefetcher = prefetch.Prefetcher(app.explorer, enabled=True, workers=0)
    computed = []
    monkeypatch.setattr(
        prefetcher.explorer,
        "analysis",
        lambda image, arch, quality, k=None, give_way=None: computed.append((image.key, arch, quality, k)),
    )
    for quality in (2, 2.5, 3, 3.5):  # older views, never run
        prefetcher.around(session.image, quality, 9)
    stale = prefetcher.take()
    prefetcher.around(newer, 2, 9)
    planned = prefetcher.planned()
    assert planned and all(task.image.key == newer.key for task in planned)
    prefetcher.run(stale)
    assert computed == []
    while (task := prefetcher.take()) is not None:
        prefetcher.run(task)
    assert len(computed) == len(planned) == len(set(computed))
    assert all(key == newer.key for key, *_ in computed)
    assert computed[0] == (newer.key, "gabic", 1.75, 9)


def test_prefetch_pauses_for_a_visitor_and_finishes(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A visitor served while a prefetch analysis runs pauses it part-way; it goes on once the
    visitor is served, is computed once, and its result is the one computed without pausing."""
    image = app.new_session(random_image(48, 64, seed=78)).image
    prefetcher = prefetch.Prefetcher(app.explorer, enabled=True, workers=0)
    checks = {"count": 0}

    def busy() -> bool:  # a visitor comes during the analysis and is served 19 checks later
        checks["count"] += 1
        return 20 <= checks["count"] < 40

    attempts = []
    original = service.analyze

    def counting(*args, **kwargs):
        attempts.append(checks["count"])
        return original(*args, **kwargs)

    monkeypatch.setattr(prefetcher.explorer, "busy", busy)
    monkeypatch.setattr(service, "analyze", counting)
    prefetcher.around(image, 2.25, 9)
    task = next(t for t in prefetcher.planned() if t.arch == "zou2022" and t.quality == 2.5)
    prefetcher.run(task)
    assert len(attempts) == 1 and attempts[0] < 20 and checks["count"] > 40
    found = app.explorer.cached(image, "zou2022", 2.5)
    monkeypatch.undo()
    alone = Explorer(WeightsSource(device="cpu")).analysis(image, "zou2022", 2.5)
    assert found is not None and found.data == alone.data


def test_prefetch_thread_runs_at_the_lowest_priority(
    app: App, loaded: tuple[Session, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("thread priorities are set on Linux only")
    session, _ = loaded
    prefetcher = prefetch.Prefetcher(app.explorer, enabled=True, workers=1)
    niceness, done = [], threading.Event()

    def analysis(*args, **kwargs) -> None:
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        done.set()

    monkeypatch.setattr(prefetcher.explorer, "analysis", analysis)
    prefetcher.around(session.image, 2, 9)
    assert done.wait(timeout=30)
    prefetcher.clear()
    assert niceness[0] == 19 and prefetcher.planned() == []


@pytest.mark.slow  # two paper-size models, written, loaded twice and run: over 10 s
def test_authors_checkpoint_folder_drives_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``python -m app --checkpoints DIR`` with paper-size checkpoints in the authors' format: the
    sample is analysed with them, the page says so, and an upload renders every view."""
    import torch

    import app.__main__ as entry
    import app.ui as app_ui
    from gabic.models import PAPER_CONFIG

    folder = write_authors_checkpoints(tmp_path / "authors", qualities=(1,))
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(tmp_path / "no-shipped-weights"))
    launched: dict = {}

    class FakeDemo:
        def launch(self, **kwargs) -> None:
            launched.update(kwargs)

    def capture(demo):
        launched["demo"] = demo
        return FakeDemo()

    monkeypatch.setattr(app_ui, "launch_queue", capture)  # main imports it when it starts
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    caplog.set_level("INFO")
    entry.main(["--checkpoints", str(folder), "--device", "cpu", "--max-side", "64", "--no-prefetch",
                "--port", "7999"])  # fmt: skip
    assert launched["server_port"] == 7999 and launched["server_name"] == "127.0.0.1"
    assert launched["max_file_size"] == MAX_FILE_SIZE
    assert "authors' checkpoints (paper configuration)" in caplog.text
    deadline = time.monotonic() + 120  # the sample is analysed while the server starts
    while "analysed at q1" not in caplog.text and "could not analyse" not in caplog.text:
        assert time.monotonic() < deadline, "the sample was not analysed"
        time.sleep(0.1)
    assert "analysed at q1" in caplog.text and "could not analyse" not in caplog.text
    page = launched["demo"].config
    assert any("authors' checkpoints" in str(c.get("props", {}).get("value", "")) for c in page["components"])

    source = WeightsSource(folder, device="cpu")
    assert source.problem() is None and source.common_qualities() == [1]
    app = App(Explorer(source), max_side=64, export_dir=tmp_path / "reports")
    photo = tmp_path / "photo.png"
    random_image(48, 64, seed=5).save(photo)
    session, views = app.load_image(str(photo), **CONTROLS)
    assert views["status"].startswith("Analysed 64×48")
    assert len(views["metrics"]) == 2 and len(views["neighbours"]["data"]) == 9
    for arch in ("gabic", "zou2022"):
        model = source.load(arch, 1)
        assert model.config == PAPER_CONFIG and model.model_id == f"{arch}-paper"
    report = Path(app.export(session, **CONTROLS)["report"]).read_text()
    assert "authors&#x27; checkpoints" in report or "authors' checkpoints" in report
