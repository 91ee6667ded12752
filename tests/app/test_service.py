"""The app's service layer: input preparation, weights and models, the memory-bounded cache,
cached analyses, RD points and k sweep, typed sessions, report files."""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from helpers import random_image
from PIL import Image

from app import service
from app.cache import ResultCache, analysis_bytes
from app.exports import ExportFolder
from app.inputs import SAMPLES, PreparedImage, image_key, prepare_image, sample_image
from app.service import Explorer, Pair
from app.session import Controls, Session, clamp_point, head_index
from app.weights import WeightsSource
from gabic import inspect as gabic_inspect
from gabic.codec.images import ImageInputError

SIZE = (192, 128)  # width, height: small enough for two cores, big enough for 1/16 windows


@pytest.fixture(scope="module")
def explorer(weights_env: Path) -> Explorer:
    return Explorer(WeightsSource(device="cpu"))


@pytest.fixture(scope="module")
def prepared() -> PreparedImage:
    return prepare_image(random_image(SIZE[1], SIZE[0], seed=3), max_side=None)


@pytest.fixture(scope="module")
def pair(explorer: Explorer, prepared: PreparedImage) -> Pair:
    return explorer.pair(prepared, 1)


def _png(image: Image.Image, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save_args.pop("format", "PNG"), **save_args)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- input
def test_prepare_image_downscales_with_a_note() -> None:
    prepared = prepare_image(_png(random_image(300, 600, seed=1)), max_side=200)
    assert prepared.size == (200, 100) and prepared.original_size == (600, 300)
    assert prepared.resized and "downscaled" in prepared.describe()
    assert any("downscaled" in note for note in prepared.notes)


def test_image_key_depends_on_pixels_only() -> None:
    image = random_image(40, 50, seed=2)
    assert image_key(image) == image_key(image.copy()) == prepare_image(_png(image)).key
    assert image_key(image) != image_key(random_image(40, 50, seed=5))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: Image.new("L", (40, 30), 128), "grayscale"),
        (lambda: Image.new("RGBA", (40, 30), (255, 0, 0, 100)), "transparency"),
        (lambda: Image.fromarray(np.full((30, 40), 40000, dtype=np.uint16)), "8 bits"),
    ],
)
def test_prepare_image_notes_conversions(make, expected: str) -> None:
    prepared = prepare_image(_png(make()))
    assert prepared.image.mode == "RGB"
    assert any(expected in note for note in prepared.notes), prepared.notes


def test_prepare_image_honours_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    prepared = prepare_image(_png(random_image(30, 60, seed=4), format="JPEG", exif=exif.tobytes()))
    assert prepared.size == (30, 60)
    assert any("EXIF" in note for note in prepared.notes)


@pytest.mark.parametrize("data", [b"", b"definitely not an image", _png(random_image(30, 30))[:60]])
def test_prepare_image_refuses_bad_input(data: bytes) -> None:
    with pytest.raises(ImageInputError):
        prepare_image(data)


def test_samples_are_bundled() -> None:
    for name in SAMPLES:
        assert sample_image(name).mode == "RGB"
    with pytest.raises(KeyError):
        sample_image("nope")


# -------------------------------------------------------------------------- weights
def test_no_weights_is_a_clear_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(tmp_path / "empty"))
    source = WeightsSource(device="cpu")
    assert source.common_qualities() == []
    assert "No weights found" in source.problem() and "--checkpoints" in source.problem()


def test_checkpoint_folder_layout_is_detected(tmp_path: Path, weights_env: Path) -> None:
    (tmp_path / "gabic").mkdir()
    for quality in (1, 2):
        (tmp_path / "gabic" / f"q{quality}-model.pth.tar").write_bytes(b"placeholder")
    source = WeightsSource(tmp_path, device="cpu")
    assert source.origin("gabic") == "checkpoints" and source.qualities("gabic") == [1, 2]
    assert source.origin("zou2022") == "shipped" and source.qualities("zou2022") == [1, 2, 3, 4]
    assert source.common_qualities() == [1, 2]
    assert "authors' checkpoints" in source.description()["gabic"]
    assert "shipped" in source.description()["zou2022"]


def test_a_borrowed_model_is_never_lent_twice_at_once(weights_env: Path) -> None:
    source = WeightsSource(device="cpu")
    with source.borrow("gabic", 1) as first, source.borrow("gabic", 1) as second:
        assert first is not second
        first.set_k(3)
        assert second.k == source.config("gabic", 1).k  # k set on one copy does not reach the other
    with source.borrow("gabic", 1) as again:
        assert again is first or again is second  # returned copies are reused


# ------------------------------------------------------------------------ the cache
def test_result_cache_evicts_least_recently_used_beyond_its_budget() -> None:
    cache: ResultCache[bytes] = ResultCache(budget_bytes=100, size_of=len)
    for key in "abc":
        cache.put(key, bytes(40))
    assert len(cache) == 2 and "a" not in cache and cache.nbytes == 80
    assert cache.get("b") is not None  # b is now the most recently used
    cache.put("d", bytes(40))
    assert "c" not in cache and {"b", "d"} <= {k for k in "abcd" if k in cache}
    cache.put("huge", bytes(500))  # alone over the budget: kept, everything else goes
    assert len(cache) == 1 and cache.nbytes == 500
    cache.put("e", bytes(10))
    assert "huge" not in cache and cache.nbytes == 10
    with pytest.raises(ValueError):
        ResultCache(0, len)


def test_result_cache_measures_an_entry_again_when_it_is_used() -> None:
    """A value that grew since it was stored (an analysis whose attention a view computed) is
    counted at its new size on its next use, and older entries make room for it."""
    cache: ResultCache[bytearray] = ResultCache(budget_bytes=100, size_of=len)
    cache.put("old", bytearray(30))
    grows = bytearray(30)
    cache.put("grows", grows)
    assert cache.nbytes == 60
    grows.extend(bytes(50))
    assert cache.get("grows") is grows and cache.nbytes == 80 and "old" not in cache
    grows.extend(bytes(10))
    assert cache.get_or_compute("grows", bytearray) is grows and cache.nbytes == 90


def test_result_cache_computes_a_key_once_and_recovers_from_failures() -> None:
    cache: ResultCache[str] = ResultCache(10**6, len)
    calls = []
    started = threading.Event()
    release = threading.Event()

    def slow() -> str:
        calls.append(1)
        started.set()
        release.wait(10)
        return "value"

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(cache.get_or_compute, "k", slow)
        started.wait(10)
        others = [pool.submit(cache.get_or_compute, "k", slow) for _ in range(3)]
        release.set()
        assert {f.result(10) for f in [first, *others]} == {"value"}
    assert len(calls) == 1

    def broken() -> str:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("x", broken)
    assert cache.get_or_compute("x", lambda: "fine") == "fine"
    assert cache.get_or_compute("x", lambda: "other", accept=lambda v: v != "fine") == "other"


def test_analysis_bytes_counts_images_maps_and_attention(pair: Pair) -> None:
    gabic = pair.gabic
    images = 2 * SIZE[0] * SIZE[1] * 3
    maps = sum(
        a.nbytes for a in (gabic.y_bits, gabic.z_bits, gabic.y_bits_per_pixel_map, gabic.z_bits_per_pixel_map)
    )
    alpha = sum(b.alpha.numel() * b.alpha.element_size() for b in gabic.blocks.values())  # computes all
    assert analysis_bytes(gabic) >= images + maps + len(gabic.data) + alpha
    without = dataclasses.replace(gabic, blocks={})
    assert analysis_bytes(without) == images + maps + len(gabic.data)


def test_explorer_cache_stays_within_its_budget(weights_env: Path) -> None:
    image = prepare_image(random_image(64, 64, seed=9))
    probe = Explorer(WeightsSource(device="cpu"))
    one = analysis_bytes(probe.analysis(image, "gabic", 1, k=1, inspect_attention=False))
    small = Explorer(WeightsSource(device="cpu"), cache_bytes=int(2.5 * one))
    for k in (1, 2, 3, 4):
        small.analysis(image, "gabic", 1, k=k, inspect_attention=False)
        assert small.results.nbytes <= small.results.budget_bytes
    assert len(small.results) == 2
    assert small.cached(image, "gabic", 1, k=1, inspect_attention=False) is None
    assert small.cached(image, "gabic", 1, k=4, inspect_attention=False) is not None


# ------------------------------------------------------------------------- analyses
def test_analyses_are_cached_per_quality_and_k(
    explorer: Explorer, prepared: PreparedImage, pair: Pair
) -> None:
    assert explorer.pair(prepared, 1).gabic is pair.gabic
    assert explorer.is_pair_cached(prepared, 1)
    assert pair.gabic.k == explorer.trained_k() and pair.zou2022.k is None
    assert explorer.cached(prepared, "gabic", 1, k=3) is None
    assert explorer.k_range() == (1, 15)
    assert pair["zou2022"] is pair.zou2022 and pair.both == (pair.gabic, pair.zou2022)


def test_same_request_from_two_threads_is_computed_once(
    explorer: Explorer, prepared: PreparedImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = service.analyze

    def counting(*args, **kwargs):
        calls.append(kwargs.get("k"))
        return original(*args, **kwargs)

    monkeypatch.setattr(service, "analyze", counting)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: explorer.analysis(prepared, "gabic", 1, k=4), range(3)))
    assert len(calls) == 1 and all(r is results[0] for r in results) and results[0].k == 4


def test_analyses_at_one_quality_run_at_the_same_time(
    weights_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No lock serialises two analyses by the same (architecture, quality): both are inside
    :func:`gabic.inspect.analyze` at once (a barrier of two would time out otherwise), each
    with a model of its own."""
    barrier = threading.Barrier(2, timeout=60)
    models = []
    original = service.analyze

    def together(model, *args, **kwargs):
        models.append(model)
        barrier.wait()
        return original(model, *args, **kwargs)

    monkeypatch.setattr(service, "analyze", together)
    explorer = Explorer(WeightsSource(device="cpu"))
    images = [prepare_image(random_image(64, 64, seed=40 + i)) for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda im: explorer.analysis(im, "zou2022", 1, inspect_attention=False), images)
        )
    assert len(results) == 2 and models[0] is not models[1]


def test_concurrent_analyses_at_one_quality_do_not_mix(weights_env: Path) -> None:
    """Four images analysed at once by the same (architecture, quality), with different k: each
    result is what a lone analysis gives (no lock serialises them; each runs on its own model)."""
    images = [prepare_image(random_image(64, 96, seed=20 + i)) for i in range(4)]
    together = Explorer(WeightsSource(device="cpu"))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: together.analysis(images[i], "gabic", 2, k=i + 2), range(4)))
    alone = Explorer(WeightsSource(device="cpu"))
    for i, result in enumerate(results):
        expected = alone.analysis(images[i], "gabic", 2, k=i + 2)
        assert result.k == i + 2 and result.data == expected.data
        for name, block in result.blocks.items():
            assert block.k == i + 2
            assert np.array_equal(block.neighbours.numpy(), expected.blocks[name].neighbours.numpy())


def test_rd_points_and_k_sweep(explorer: Explorer, prepared: PreparedImage, pair: Pair) -> None:
    points = explorer.rd_points(prepared, classic=False)
    assert {(p["method"], p["quality"]) for p in points} == {
        (m, q) for m in ("GABIC", "Zou2022") for q in (1, 2, 3, 4)
    }
    known = {(p["method"], p["quality"]) for p in explorer.known_rd_points(prepared)}
    assert known >= {("GABIC", 1), ("Zou2022", 1)}
    seen = []
    rows = explorer.k_sweep(prepared, 1, ks=[1, 2], progress=lambda f, m: seen.append(m))
    assert [r["k"] for r in rows] == [1, 2] and seen[-1] == "done"
    assert all(r["bpp"] > 0 for r in rows)


def test_classic_points(explorer: Explorer, prepared: PreparedImage) -> None:
    points = explorer.classic_points(prepared, "jpeg")
    assert points and all(p["method"] == "JPEG" and p["bpp"] > 0 for p in points)
    assert explorer.classic_points(prepared, "jpeg") is points  # cached
    assert {p["method"] for p in explorer.known_rd_points(prepared)} >= {"JPEG"}


def test_analysis_matches_gabic_inspect(explorer: Explorer, pair: Pair, prepared: PreparedImage) -> None:
    model = explorer.source.load("zou2022", 1)
    direct = gabic_inspect.analyze(model, prepared.image, inspect_attention=False)
    assert direct.data == pair.zou2022.data


# -------------------------------------------------------------------------- session
def test_session_is_typed_and_immutable(prepared: PreparedImage) -> None:
    session = Session.start(prepared)
    assert session.point == (SIZE[0] / 2, SIZE[1] / 2) and session.edge == -1
    moved = session.with_edge(3).clicked(-5, 1e6)
    assert moved.point == (0.0, SIZE[1] - 1.0) and moved.edge == -1 and moved.image is prepared
    assert session.with_edge(2).edge == 2 and session.edge == -1
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.point = (1.0, 1.0)  # type: ignore[misc]
    assert clamp_point(SIZE, 10, -3) == (10.0, 0.0)


def test_controls_read_widget_values() -> None:
    controls = Controls.read(2.0, 9.0, "decoder 1/16", "3", "z")
    assert controls == Controls(quality=2, k=9, block="decoder 1/16", head=2, part="z")
    fallback = Controls.read(1, 4, "no such block", "mean", "w")
    assert (fallback.block, fallback.head, fallback.part) == (service.BLOCKS[0], None, "total")
    assert head_index("mean") is None and head_index(1) == 0


# -------------------------------------------------------------------------- exports
def test_export_folder_keeps_the_newest_reports_and_goes_away(tmp_path: Path) -> None:
    folder = ExportFolder(keep=2)
    assert folder.owned and folder.path.is_dir()
    paths = [folder.write(f"r{i}.html", f"<p>{i}</p>") for i in range(4)]
    assert sorted(p.name for p in folder.path.iterdir()) == sorted(p.name for p in paths[-2:])
    with pytest.raises(ValueError):
        folder.write("../escape.html", "x")
    folder.remove()
    assert not folder.path.exists()
    given = ExportFolder(tmp_path / "reports", keep=5)
    given.write("a.html", "a")
    given.remove()  # a folder the caller gave is never removed
    assert (tmp_path / "reports" / "a.html").is_file()


def test_image_files_draw_a_picture_once_per_sources_and_parameters(tmp_path: Path) -> None:
    """:meth:`ImageFiles.drawn`: the same source objects and key give the same file without
    drawing; an equal but new source object, or another key, draws again; a source the caller
    let go is not kept alive; files beyond ``keep_files`` are deleted, oldest first."""
    import gc
    import weakref

    from PIL import Image

    from app.exports import ImageFiles

    files = ImageFiles(tmp_path, keep_drawn=8, keep_files=16)
    calls: list[str] = []

    class Source:  # stands for an analysis: compared by identity only
        pass

    def draw(colour: str) -> Image.Image:
        calls.append(colour)
        return Image.new("RGB", (8, 8), colour)

    first, second = Source(), Source()
    path = files.drawn(("bits", "total"), (first, second), lambda: draw("red"), lossy=True)
    assert path.endswith(".jpg") and Path(path).is_file()
    assert files.drawn(("bits", "total"), (first, second), lambda: draw("red"), lossy=True) == path
    assert calls == ["red"]
    other = files.drawn(("bits", "y"), (first, second), lambda: draw("blue"))
    assert other != path and other.endswith(".png") and calls == ["red", "blue"]
    assert files.drawn(("bits", "total"), (Source(), second), lambda: draw("red")) != path
    gone = weakref.ref(first)
    del first
    gc.collect()
    assert gone() is None  # the remembered picture held no strong reference to its source
    for i in range(20):
        files.drawn(("n", i), (second,), lambda: draw("green"))
    assert len(list(files.path.iterdir())) == 16 and not Path(path).exists()
    assert files.drawn(("bits", "y"), (Source(), second), lambda: draw("blue")) != other


def test_a_new_pair_runs_each_model_on_half_the_threads(
    weights_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both analyses of a new pair run side by side, each on half of PyTorch's intra-op threads
    (OpenMP counts them per thread); the caller's count is restored, and the results are those
    of analyses run one at a time with all threads."""
    import torch

    seen: dict[str, int] = {}
    original = service.analyze

    def counting(model, *args, **kwargs):
        seen[model.arch] = torch.get_num_threads()
        return original(model, *args, **kwargs)

    monkeypatch.setattr(service, "analyze", counting)
    image = prepare_image(random_image(64, 96, seed=50))
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        pair = Explorer(WeightsSource(device="cpu")).pair(image, 2)
        assert seen == {"gabic": 2, "zou2022": 2} and torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)
    alone = Explorer(WeightsSource(device="cpu"))
    for arch in ("gabic", "zou2022"):
        assert pair[arch].data == alone.analysis(image, arch, 2).data


def test_an_analysis_gives_way_and_leaves_no_hooks(explorer: Explorer, prepared: PreparedImage) -> None:
    """``analysis(give_way=...)`` pauses part-way while ``give_way()`` is true and then goes on;
    the lent model has no hooks left, and the result is the one computed without pausing."""
    checks = []

    def give_way() -> bool:  # asked before every module call; "wait" for the 11th to 30th asks
        checks.append(time.monotonic())
        return 10 <= len(checks) < 30

    paused = explorer.analysis(prepared, "zou2022", 3.5, give_way=give_way)
    assert len(checks) > 30 and checks[29] - checks[10] >= 19 * 0.015  # it slept between asks
    with explorer.source.borrow("zou2022", 3.5) as model:
        assert not any(module._forward_pre_hooks for module in model.modules())
    alone = Explorer(WeightsSource(device="cpu")).analysis(prepared, "zou2022", 3.5)
    assert paused.data == alone.data and paused.psnr == alone.psnr


def test_a_visitor_asking_for_a_paused_analysis_gets_it(explorer: Explorer, prepared: PreparedImage) -> None:
    """A background analysis paused for a visitor goes on when that visitor waits for this very
    analysis (the cache computes each key once): no deadlock, one computation for both."""
    paused = threading.Event()

    def give_way() -> bool:
        paused.set()
        return explorer.busy()

    answers: dict[str, object] = {}
    with explorer.serving():
        background = threading.Thread(
            target=lambda: answers.setdefault(
                "background", explorer.analysis(prepared, "zou2022", 1.75, give_way=give_way)
            ),
            daemon=True,
        )
        background.start()
        assert paused.wait(timeout=60)  # the background analysis has begun and is pausing
        visitor = threading.Thread(
            target=lambda: answers.setdefault("visitor", explorer.analysis(prepared, "zou2022", 1.75)),
            daemon=True,
        )
        visitor.start()
        visitor.join(timeout=60)
        assert not visitor.is_alive(), "the visitor waited for an analysis paused for the visitor"
    background.join(timeout=60)
    assert answers["visitor"] is answers["background"]


def test_busy_while_a_visitor_is_served_and_shortly_after(weights_env: Path) -> None:
    explorer = Explorer(WeightsSource(device="cpu"))
    assert not explorer.busy()
    with explorer.serving():
        with explorer.serving():
            assert explorer.busy()
        assert explorer.busy()
    assert explorer.busy()  # the page is still receiving and painting the answer
    time.sleep(service.QUIET_AFTER_SERVING + 0.05)
    assert not explorer.busy()
