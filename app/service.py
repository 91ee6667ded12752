"""What the app computes: analyses of one image by GABIC and Zou2022, cached, and the
rate–distortion points and k sweep built from them.

:mod:`gabic.inspect` runs one image through one model; :class:`Explorer` adds what an
interactive comparison needs on top of it: both models at one quality (:class:`Pair`), a
cache bounded by memory (:class:`app.cache.ResultCache`) shared by all sessions, each
analysis computed once even when several sessions ask at the same time, and a model of its
own for every analysis (:meth:`app.weights.WeightsSource.borrow`), so analyses run in
parallel without locks. Drawing is :mod:`gabic.viz`.

Coordinates are ``(x, y)`` pixels of the prepared (possibly downscaled) image.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from gabic import codec
from gabic.eval import EqualRate, SearchGain, search_gain
from gabic.inspect import (
    Analysis,
    EntropyView,
    ProgressiveDecoding,
    analyze,
    entropy_view,
    progressive_decoding,
)
from gabic.models import BLOCK_NAMES

from .cache import ResultCache, analysis_bytes, value_bytes
from .inputs import PreparedImage
from .pause import pausable
from .weights import ARCHS, DISPLAY_NAMES, WeightsSource

BLOCKS: tuple[str, ...] = tuple(BLOCK_NAMES)
CLASSIC_CODECS = ("jpeg", "webp", "avif")
#: Default memory budget of the analysis cache: ~18 analyses of a 0.15 MP photo (~28 MB each with attention).
DEFAULT_CACHE_BYTES = 512 * 2**20
#: Memory budget of the views opened on request (entropy model, progressive decoding, classic
#: codecs at the same size, equal rate): a few MB each for a 512-px photo.
VIEW_CACHE_BYTES = 256 * 2**20
#: Seconds after a visitor's event during which background analyses still wait: the page receives
#: and paints the answer meanwhile, on the same two cores.
QUIET_AFTER_SERVING = 0.3

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    return None


@contextlib.contextmanager
def _share_of_threads(parts: int) -> Iterator[None]:
    """Run the body on ``1/parts`` of PyTorch's intra-op CPU threads (at least one).

    OpenMP keeps the thread count per calling thread, so two analyses run side by side, each
    on its share, instead of both teams spinning on every core: on a 2-core CPU a 512-px pair
    took 0.80 s with two threads each and 0.75 s with one (and ~0.15 CPU-s less, which the
    browser drawing the page at the same time gets).
    """
    total = torch.get_num_threads()
    torch.set_num_threads(max(1, total // parts))
    try:
        yield
    finally:
        torch.set_num_threads(total)


@dataclass(frozen=True)
class Pair:
    """GABIC and Zou2022 analyses of one image at one quality."""

    gabic: Analysis
    zou2022: Analysis

    def __getitem__(self, arch: str) -> Analysis:
        if arch not in ARCHS:
            raise KeyError(f"unknown architecture {arch!r}; choose from {ARCHS}")
        return self.gabic if arch == "gabic" else self.zou2022

    @property
    def both(self) -> tuple[Analysis, Analysis]:
        """``(gabic, zou2022)``, the order every view shows them in."""
        return self.gabic, self.zou2022


def _point(method: str, quality: int, analysis: Analysis) -> dict[str, Any]:
    return {"method": method, "quality": quality, "bpp": analysis.bpp, "psnr": analysis.psnr,
            "ms_ssim": analysis.ms_ssim}  # fmt: skip


class Explorer:
    """Cached analyses of images by both models.

    Analyses are cached per ``(weights, image key, arch, quality, k)``; the cache keeps
    least-recently-used analyses up to ``cache_bytes`` (estimated by
    :func:`app.cache.analysis_bytes`: images, bit maps and recorded attention).
    """

    def __init__(self, source: WeightsSource | None = None, cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.source = source or WeightsSource()
        self.results: ResultCache[Analysis] = ResultCache(cache_bytes, analysis_bytes)
        #: JPEG/WebP/AVIF points per (image, codec): a dict of five numbers is ~200 bytes.
        self._classic: ResultCache[list[dict[str, Any]]] = ResultCache(
            2**20, lambda points: 200 * (len(points) + 1)
        )
        self._views: ResultCache[Any] = ResultCache(VIEW_CACHE_BYTES, value_bytes)
        #: Zou2022's half of :meth:`pair` (one per concurrent event, plus the prefetch).
        self._pair_workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gabic-pair")
        #: Visitors' events being served now (:meth:`serving`), and when the last one ended.
        self._serving = 0
        self._served_at = -math.inf
        self._serving_lock = threading.Lock()

    def busy(self) -> bool:
        """True while a visitor's event is being served (:meth:`serving`, and every :meth:`pair`),
        and for :data:`QUIET_AFTER_SERVING` seconds after the last one ended (the page receives and
        paints its answer meanwhile): background work waits for it to be false."""
        with self._serving_lock:
            return self._serving > 0 or time.monotonic() - self._served_at < QUIET_AFTER_SERVING

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Marks the block as a visitor's event (nested blocks count once each)."""
        with self._serving_lock:
            self._serving += 1
        try:
            yield
        finally:
            with self._serving_lock:
                self._serving -= 1
                self._served_at = time.monotonic()

    # ---------------------------------------------------------------- models
    def trained_k(self) -> int | None:
        """The k GABIC's weights were trained with (from the first available quality)."""
        qualities = self.source.qualities("gabic")
        return self.source.config("gabic", qualities[0]).k if qualities else None

    def k_range(self) -> tuple[int, int]:
        """Valid k for GABIC: ``1 .. smallest window² − 1``."""
        qualities = self.source.qualities("gabic")
        if not qualities:
            return 1, 15
        windows = self.source.config("gabic", qualities[0]).windows
        return 1, min(w * w for w in windows) - 1

    def heads(self) -> int:
        qualities = self.source.common_qualities()
        return self.source.config("gabic", qualities[0]).heads if qualities else 8

    # -------------------------------------------------------------- analyses
    def _key(self, image: PreparedImage, arch: str, quality: int, k: int | None) -> tuple:
        """Cache key; GABIC's k defaults to the one its weights at ``quality`` were trained with."""
        quality = self.source.check_quality(arch, quality)
        if arch != "gabic":
            k = None
        elif k is None:
            k = self.source.config(arch, quality).k
        return (self.source.key(), image.key, arch, quality, None if k is None else int(k))

    @staticmethod
    def _wants(inspect_attention: bool) -> Callable[[Analysis], bool]:
        """An analysis with recorded attention serves every request; one without only those
        that do not need it."""
        return lambda found: bool(found.blocks) or not inspect_attention

    def cached(self, image: PreparedImage, arch: str, quality: int, k: int | None = None,
               inspect_attention: bool = True) -> Analysis | None:  # fmt: skip
        """The cached analysis, or ``None`` (never computes)."""
        return self.results.get(self._key(image, arch, quality, k), self._wants(inspect_attention))

    def analysis(self, image: PreparedImage, arch: str, quality: int, k: int | None = None,
                 inspect_attention: bool = True, give_way: Callable[[], bool] | None = None) -> Analysis:  # fmt: skip
        """Analysis of ``image`` by ``arch`` at ``quality`` (GABIC with ``k`` neighbours,
        default the trained k), from the cache or computed now. ``give_way``: computing it pauses
        part-way while ``give_way()`` is true (:func:`app.pause.pausable`; the prefetch's analyses
        give way to visitors), unless another thread waits for this very analysis."""
        if arch not in ARCHS:
            raise ValueError(f"unknown architecture {arch!r}")
        quality = self.source.check_quality(arch, quality)
        key = self._key(image, arch, quality, k)
        k = key[-1]

        def paused() -> bool:  # a visitor waiting for this very analysis lets it go on
            return give_way() and not self.results.awaited(key)

        def compute() -> Analysis:
            with (
                self.source.borrow(arch, quality) as model,  # analyze runs without autograd itself
                pausable(model, paused) if give_way is not None else contextlib.nullcontext(),
            ):
                # the reconstruction from the encoder's ŷ: what decoding gives, bit for bit, in less time
                return analyze(model, image.image, k=k, inspect_attention=inspect_attention, decode=False)

        return self.results.get_or_compute(key, compute, self._wants(inspect_attention))

    def pair(self, image: PreparedImage, quality: int, k: int | None = None,
             progress: Progress | None = None, inspect_attention: bool = True) -> Pair:  # fmt: skip
        """Both models on ``image`` at ``quality``: when neither is cached, Zou2022 runs in a
        worker thread while GABIC runs here, each on half of PyTorch's CPU threads (on a 2-core
        Xeon a pair of 481×321 analyses took 0.60 s this way, against 0.71 s one after the other on
        both threads). ``inspect_attention=False`` (numbers only, as the API) keeps no block inputs."""
        with self.serving():
            return self._pair(image, quality, k, progress or _no_progress, inspect_attention)

    def _pair(self, image: PreparedImage, quality: float, k: int | None, progress: Progress,
              inspect_attention: bool) -> Pair:  # fmt: skip
        if (
            self.cached(image, "gabic", quality, k, inspect_attention) is not None
            or self.cached(image, "zou2022", quality, None, inspect_attention) is not None
        ):
            # at most one model to run (a k change runs GABIC alone): it gets all the threads
            gabic = self.analysis(image, "gabic", quality, k, inspect_attention)
            progress(0.5, f"Zou2022 q{quality:g}")
            return Pair(gabic, self.analysis(image, "zou2022", quality, None, inspect_attention))
        progress(0.0, f"GABIC and Zou2022 q{quality:g}")

        def zou2022() -> Analysis:
            with _share_of_threads(2):
                return self.analysis(image, "zou2022", quality, None, inspect_attention)

        zou_future = self._pair_workers.submit(zou2022)
        try:
            with _share_of_threads(2):
                gabic = self.analysis(image, "gabic", quality, k, inspect_attention)
        finally:
            zou = zou_future.result()
        progress(1.0, "done")
        return Pair(gabic, zou)

    def is_pair_cached(self, image: PreparedImage, quality: int, k: int | None = None) -> bool:
        return (self.cached(image, "gabic", quality, k) is not None
                and self.cached(image, "zou2022", quality) is not None)  # fmt: skip

    # ------------------------------------------------------------- RD and k
    def rd_points(self, image: PreparedImage, k: int | None = None, classic: bool = True,
                  progress: Progress | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """This image's rate–distortion points: both models at every common quality
        (GABIC with ``k``) and JPEG/WebP/AVIF where this Pillow build has them.

        Returns:
            dicts with ``method``, ``quality``, ``bpp``, ``psnr``, ``ms_ssim``.
        """
        progress = progress or _no_progress
        qualities = self.source.common_qualities()
        steps = 2 * len(qualities) + (len(CLASSIC_CODECS) if classic else 0)
        done = 0
        points = []
        for arch in ARCHS:
            for quality in qualities:
                progress(done / steps, f"{DISPLAY_NAMES[arch]} q{quality}")
                found = self.analysis(
                    image, arch, quality, k if arch == "gabic" else None, inspect_attention=False
                )
                points.append(_point(DISPLAY_NAMES[arch], quality, found))
                done += 1
        if classic:
            for codec_name in CLASSIC_CODECS:
                progress(done / steps, codec_name.upper())
                points.extend(self.classic_points(image, codec_name))
                done += 1
        progress(1.0, "done")
        return points

    def classic_points(self, image: PreparedImage, codec_name: str) -> list[dict[str, Any]]:
        """JPEG/WebP/AVIF RD points of ``image`` (empty when this Pillow build lacks the codec)."""
        from gabic.eval import classic

        def compute() -> list[dict[str, Any]]:
            try:
                curve = classic.classic_rd_curve(image.image, codec_name)
            except Exception:  # a codec missing from this Pillow build: leave it out of the plot
                return []
            return [
                {"method": codec_name.upper(), "quality": int(p.get("quality", 0) or 0), "bpp": float(p["bpp"]),
                 "psnr": float(p["psnr"]), "ms_ssim": float(p.get("ms_ssim", math.nan))}
                for p in curve
            ]  # fmt: skip

        return self._classic.get_or_compute(("classic", image.key, codec_name), compute)

    def known_rd_points(self, image: PreparedImage, k: int | None = None) -> list[dict[str, Any]]:
        """The RD points of :meth:`rd_points` that are already computed (never computes)."""
        points = []
        for arch in ARCHS:
            for quality in self.source.common_qualities():
                found = self.cached(
                    image, arch, quality, k if arch == "gabic" else None, inspect_attention=False
                )
                if found is not None:
                    points.append(_point(DISPLAY_NAMES[arch], quality, found))
        for codec_name in CLASSIC_CODECS:
            points.extend(self._classic.get(("classic", image.key, codec_name)) or [])
        return points

    def k_sweep(self, image: PreparedImage, quality: int, ks: Sequence[int] | None = None,
                progress: Progress | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """GABIC at ``quality`` with each k in ``ks`` (default all valid k): bpp, PSNR, MS-SSIM.
        Attention is not recorded (faster); values other than the trained k are out of distribution."""
        progress = progress or _no_progress
        low, high = self.k_range()
        ks = list(ks) if ks is not None else list(range(low, high + 1))
        rows = []
        for i, k in enumerate(ks):
            progress(i / len(ks), f"k = {k}")
            found = self.analysis(image, "gabic", quality, k, inspect_attention=False)
            rows.append({"k": k, "bpp": found.bpp, "bpp_estimated": found.bpp_estimated, "psnr": found.psnr,
                         "ms_ssim": found.ms_ssim})  # fmt: skip
        progress(1.0, "done")
        return rows

    # ------------------------------------------------- views opened on request
    def _view(self, key: tuple, compute: Callable[[], Any]) -> Any:
        return self._views.get_or_compute((self.source.key(), *key), compute)

    def entropy(self, image: PreparedImage, arch: str, quality: float, k: int | None = None) -> EntropyView:
        """:func:`gabic.inspect.entropy_view` of ``image`` by ``arch`` at ``quality`` (GABIC with ``k``)."""
        key = self._key(image, arch, quality, k)
        quality, k = key[3], key[4]

        def compute() -> EntropyView:
            with self.source.borrow(arch, quality) as model:
                return entropy_view(codec.with_k(model, k) if k is not None else model, image.image)

        return self._view(("entropy", *key[1:]), compute)

    def progressive(self, image: PreparedImage, arch: str, quality: float,
                    k: int | None = None) -> ProgressiveDecoding:  # fmt: skip
        """:func:`gabic.inspect.progressive_decoding` (s = 0…S) of the view :meth:`entropy` gives."""
        key = self._key(image, arch, quality, k)
        quality, k = key[3], key[4]
        view = self.entropy(image, arch, quality, k)

        def compute() -> ProgressiveDecoding:
            with self.source.borrow(arch, quality) as model:
                return progressive_decoding(codec.with_k(model, k) if k is not None else model, view)

        return self._view(("progressive", *key[1:]), compute)

    def search_gain(self, image: PreparedImage, arch: str, quality: float, k: int | None, effort: int,
                    on_step: Callable[[int], None] | None = None, compute: bool = True) -> SearchGain | None:  # fmt: skip
        """:func:`gabic.eval.search_gain` of ``image`` by ``arch`` at ``quality`` (GABIC with ``k``),
        ``effort`` steps, cached; ``compute=False`` gives the cached one or ``None``."""
        key = self._key(image, arch, quality, k)
        view_key = ("search", *key[1:], int(effort))
        if not compute:
            return self._views.get((self.source.key(), *view_key))

        def run() -> SearchGain:
            with self.source.borrow(arch, key[3]) as model:
                model = codec.with_k(model, key[4]) if key[4] is not None else model
                return search_gain(model, image.image, int(effort), on_step)

        return self._view(view_key, run)

    def classic_same_size(self, image: PreparedImage, bpp: float) -> dict[str, dict[str, Any]]:
        """JPEG/WebP/AVIF of ``image`` at (about) ``bpp`` (:func:`gabic.eval.classic_at_same_size`)."""
        from gabic.eval import classic_at_same_size

        target = round(float(bpp), 4)
        return self._view(("same size", image.key, target), lambda: classic_at_same_size(image.image, target))

    def equal_rate(self, image: PreparedImage, quality: float) -> EqualRate:
        """GABIC's variable-rate model at ``quality`` and Zou2022's at the quality of the same
        real bpp (:func:`gabic.eval.equal_rate`); ``FileNotFoundError`` if the files are missing."""
        from gabic import zoo
        from gabic.eval.equal_rate_set import compare_at_equal_rate

        names = zoo.VARIABLE_RATE_FAMILIES
        missing = [name for name in names.values() if not zoo.is_variable_rate(name)]
        if missing:
            raise FileNotFoundError(
                f"the variable-rate weights {', '.join(missing)} are not in {zoo.weights_dir()} yet"
            )
        quality = round(float(quality) * 100) / 100
        if not 1 <= quality <= 4:
            raise ValueError(f"quality must be in 1..4, got {quality}")

        def compute() -> EqualRate:
            # one model per architecture, lent at each quality of the search (not a file load per step)
            gabic, zou2022 = (zoo.load(names[arch], quality, self.source.device) for arch in ARCHS)
            return compare_at_equal_rate(gabic, zou2022, image.image, quality)

        return self._view(("equal rate", image.key, quality), compute)
