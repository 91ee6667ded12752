"""Background analyses around the view a user looks at, so that the next move of the quality or
k slider usually lands on a computed value. Best effort and out of the way: two threads at the
lowest CPU priority that run an analysis only while no visitor waits for one (stopping it
part-way when one comes: :mod:`app.interrupt`), nearest values first, the newest request wins,
a bounded queue."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from .inputs import PreparedImage
from .interrupt import AnalysisStoppedError
from .service import Explorer
from .session import quality_value

log = logging.getLogger("gabic.app")

#: Most prefetch tasks (one analysis each) waiting at a time.
PREFETCH_QUEUE = 40
#: Step of the quality slider of a variable-rate family (13 positions from 1 to 4): the prefetch
#: covers every position a drag can land on. A typed quality may be any hundredth.
QUALITY_STEP = 0.25
#: Prefetch threads: one per core of a 2-core machine (they only get what requests leave).
PREFETCH_WORKERS = 2
#: How often a prefetch thread looks whether a visitor still waits for an analysis.
YIELD_SECONDS = 0.02


def _lowest_priority() -> None:
    """Give the calling thread (and the OpenMP threads it starts later) nice 19, on Linux where
    the nice value is per thread, and one PyTorch thread (the setting is per calling thread):
    prefetching then takes only CPU time that the analyses asked for and the browser drawing
    the page do not want, and two prefetch threads keep two cores busy without oversubscribing."""
    torch.set_num_threads(1)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def slider_qualities(qualities: list[int], continuous: bool) -> list[float]:
    """The positions of the quality slider: every :data:`QUALITY_STEP` from the lowest to the
    highest quality for a variable-rate family, else the family's qualities."""
    if not continuous or not qualities:
        return [quality_value(q) for q in qualities]
    low, high = min(qualities), max(qualities)
    steps = round((high - low) / QUALITY_STEP)
    return [quality_value(low + i * QUALITY_STEP) for i in range(steps + 1)]


def prefetch_plan(positions: list[float], quality: float, k: int, k_range: tuple[int, int],
                  graph_k: bool = True) -> list[tuple[float, int, tuple[str, ...]]]:  # fmt: skip
    """``(quality, k, architectures)`` to analyse after a view at ``(quality, k)``, nearest first:
    the slider positions by distance from ``quality`` (both models), with GABIC at ``k ± 1``
    after the two nearest qualities (``graph_k``; k changes only GABIC)."""
    others = sorted((q for q in positions if quality_value(q) != quality_value(quality)),
                    key=lambda q: (abs(q - quality), q))  # fmt: skip
    both = ("gabic", "zou2022")
    plan = [(q, k, both) for q in others]
    if graph_k:
        neighbours = [(quality, kk, ("gabic",)) for kk in (k + 1, k - 1) if k_range[0] <= kk <= k_range[1]]
        plan[min(2, len(plan)) : min(2, len(plan))] = neighbours
    return plan


class Prefetcher:
    """Queues analyses around a view on :data:`PREFETCH_WORKERS` low-priority threads.

    The newest request wins: what is still queued for an older one (another image, or another
    view of the same image) is skipped when its turn comes, across all sessions, and at most
    :data:`PREFETCH_QUEUE` tasks wait at a time. ``enabled=False`` queues nothing.
    """

    def __init__(self, explorer: Explorer, enabled: bool = True):
        self.explorer = explorer
        self.enabled = enabled
        self.executor = ThreadPoolExecutor(
            max_workers=PREFETCH_WORKERS, thread_name_prefix="gabic-prefetch", initializer=_lowest_priority
        )
        self.pending = 0
        self._generation = 0
        self._lock = threading.Lock()

    def around(self, image: PreparedImage, quality: float, k: int) -> None:
        """Queue the analyses of ``image`` around ``(quality, k)`` (:func:`prefetch_plan`); those
        cached cost nothing when their turn comes."""
        if not self.enabled:
            return
        source = self.explorer.source
        positions = slider_qualities(source.common_qualities(), source.variable_rate())
        plan = prefetch_plan(positions, float(quality), int(k), self.explorer.k_range(),
                             graph_k=self.explorer.trained_k() is not None)  # fmt: skip
        with self._lock:
            self._generation += 1
            generation = self._generation
        for position, kk, archs in plan:
            for arch in archs:
                with self._lock:
                    if self.pending >= PREFETCH_QUEUE:
                        return
                    self.pending += 1
                self.executor.submit(self._one, generation, image, arch, position, kk)

    def _one(self, generation: int, image: PreparedImage, arch: str, quality: float, k: int) -> None:
        """One analysis, unless a newer request was queued since. It runs only while no visitor
        waits for an analysis: it starts when none does, and stops part-way (and starts again
        later) when one comes (a low priority does not keep a thread from holding Python's lock
        or the memory bandwidth the visitor's analysis needs)."""
        try:
            while True:
                while self.explorer.busy():
                    time.sleep(YIELD_SECONDS)
                with self._lock:
                    if generation != self._generation:
                        return
                try:
                    self.explorer.analysis(
                        image, arch, quality, k if arch == "gabic" else None, stop=self.explorer.busy
                    )
                    return
                except AnalysisStoppedError:
                    continue
        except Exception as error:  # prefetching is best effort; the request path reports errors
            log.info("prefetch of %s q%s failed: %s", arch, quality, error)
        finally:
            with self._lock:
                self.pending -= 1
