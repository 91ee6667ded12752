"""Background analyses of a new image at the family's other qualities, so that a later quality
scrub finds them cached. Best effort and out of the way: one thread at the lowest CPU priority,
the newest image first, a short queue."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from .inputs import PreparedImage
from .service import Explorer
from .weights import ARCHS

log = logging.getLogger("gabic.app")

#: Most prefetch tasks (one quality of one image each) waiting at a time.
PREFETCH_QUEUE = 8


def _lowest_priority() -> None:
    """Give the calling thread (and the OpenMP threads it starts later) nice 19, on Linux where
    the nice value is per thread: prefetching then takes only CPU time that the analyses asked
    for and the browser drawing the page do not want."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class Prefetcher:
    """Queues both analyses of an image at every common quality on one low-priority thread.

    The newest image wins: what is still queued for an older one is skipped when its turn
    comes (across all sessions), and at most :data:`PREFETCH_QUEUE` tasks wait at a time.
    ``enabled=False`` queues nothing.
    """

    def __init__(self, explorer: Explorer, enabled: bool = True):
        self.explorer = explorer
        self.enabled = enabled
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="gabic-prefetch", initializer=_lowest_priority
        )
        self.pending = 0
        self._newest: str | None = None
        self._lock = threading.Lock()

    def qualities(self, image: PreparedImage, k: int) -> None:
        """Queue the analyses of ``image`` at the family's common qualities (those cached cost
        nothing)."""
        if not self.enabled:
            return
        with self._lock:
            self._newest = image.key
        for quality in self.explorer.source.common_qualities():
            with self._lock:
                if self.pending >= PREFETCH_QUEUE:
                    return
                self.pending += 1
            self.executor.submit(self._one, image, quality, k)

    def _one(self, image: PreparedImage, quality: int, k: int) -> None:
        """Both analyses at ``quality``, one after the other on this thread (a pair would run
        Zou2022 on a worker at normal priority); nothing when a newer image was queued since."""
        try:
            for arch in ARCHS:
                with self._lock:
                    if image.key != self._newest:
                        return
                self.explorer.analysis(image, arch, quality, k if arch == "gabic" else None)
        except Exception as error:  # prefetching is best effort; the request path reports errors
            log.info("prefetch of q%s failed: %s", quality, error)
        finally:
            with self._lock:
                self.pending -= 1
