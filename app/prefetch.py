"""Background analyses around the view a user looks at, so that the next move of the quality or
k slider usually lands on a computed value. Best effort and out of the way: two threads at the
lowest CPU priority that analyse only while no visitor is being served (pausing part-way when one
comes: :mod:`app.pause`), nearest values first; the newest view's plan replaces what an older
view left to do."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections import deque
from dataclasses import dataclass

import torch

from .inputs import PreparedImage
from .pause import wait_while
from .service import Explorer
from .session import quality_value

log = logging.getLogger("gabic.app")

#: Most prefetch tasks (one analysis each) planned at a time.
PREFETCH_QUEUE = 40
#: Step of the quality slider of a variable-rate family (13 positions from 1 to 4): the prefetch
#: covers every position a drag can land on. A typed quality may be any hundredth.
QUALITY_STEP = 0.25
#: Prefetch threads: one per core of a 2-core machine (they only get what requests leave).
PREFETCH_WORKERS = 2


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


@dataclass(frozen=True)
class PrefetchTask:
    """One analysis of a plan; ``generation`` numbers the view that planned it."""

    generation: int
    image: PreparedImage
    arch: str
    quality: float
    k: int


class Prefetcher:
    """Runs the analyses around the newest view on ``workers`` low-priority threads (started with
    the first plan; ``workers=0`` starts none, and :meth:`take` / :meth:`run` drive it by hand).

    The newest view wins, across all sessions: :meth:`around` replaces the plan, so what an older
    view (another image, or another view of the same one) left to do is dropped, and at most
    :data:`PREFETCH_QUEUE` analyses are planned at a time. ``enabled=False`` plans nothing.
    """

    def __init__(self, explorer: Explorer, enabled: bool = True, workers: int = PREFETCH_WORKERS):
        self.explorer = explorer
        self.enabled = enabled
        self._workers = workers
        self._threads: list[threading.Thread] = []
        self._plan: deque[PrefetchTask] = deque()
        self._generation = 0
        self._planned = threading.Condition()

    def around(self, image: PreparedImage, quality: float, k: int) -> None:
        """Plan the analyses of ``image`` around ``(quality, k)`` (:func:`prefetch_plan`) in place
        of the plan before; those cached cost nothing when their turn comes."""
        if not self.enabled:
            return
        source = self.explorer.source
        positions = slider_qualities(source.common_qualities(), source.variable_rate())
        plan = prefetch_plan(positions, float(quality), int(k), self.explorer.k_range(),
                             graph_k=self.explorer.trained_k() is not None)  # fmt: skip
        with self._planned:
            self._generation += 1
            tasks = [PrefetchTask(self._generation, image, arch, position, kk)
                     for position, kk, archs in plan for arch in archs]  # fmt: skip
            self._plan = deque(tasks[:PREFETCH_QUEUE])
            while len(self._threads) < self._workers:
                thread = threading.Thread(
                    target=self._work, name=f"gabic-prefetch_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._planned.notify_all()

    def planned(self) -> list[PrefetchTask]:
        """The analyses still to run, next first."""
        with self._planned:
            return list(self._plan)

    def clear(self) -> None:
        """Drop what is planned (an analysis already running finishes)."""
        with self._planned:
            self._generation += 1
            self._plan.clear()

    def take(self, timeout: float | None = 0.0) -> PrefetchTask | None:
        """The next analysis of the plan, waiting up to ``timeout`` seconds (``None``: for ever)
        for one; ``None`` if there is none."""
        with self._planned:
            self._planned.wait_for(lambda: self._plan, timeout)
            return self._plan.popleft() if self._plan else None

    def run(self, task: PrefetchTask) -> None:
        """One analysis, unless a newer view was planned since. It starts once no visitor is being
        served and pauses part-way while one is (a low priority does not keep a thread from
        holding Python's lock or the memory bandwidth that the visitor's event needs)."""
        try:
            wait_while(self.explorer.busy)
            with self._planned:
                if task.generation != self._generation:
                    return
            k = task.k if task.arch == "gabic" else None
            self.explorer.analysis(task.image, task.arch, task.quality, k, give_way=self.explorer.busy)
        except Exception as error:  # prefetching is best effort; the request path reports errors
            log.info("prefetch of %s q%s failed: %s", task.arch, task.quality, error)

    def _work(self) -> None:
        _lowest_priority()
        while True:
            task = self.take(timeout=None)
            if task is not None:
                self.run(task)
