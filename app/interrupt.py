"""Stopping a background analysis part-way, as soon as a visitor needs the CPU.

An analysis runs about a thousand module calls (encoder, entropy model, decoder); while
:func:`interruptible` is open, each call of a module of the given model, from the thread that
opened it, first asks ``should_stop()``. The prefetch (:mod:`app.prefetch`) uses it: the work it
had done is dropped and done again later, and the visitor's analysis gets the CPU within
milliseconds instead of sharing it until the prefetch's analysis ends (on two cores that cost an
upload ~0.4 s).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from torch import nn


class AnalysisStoppedError(Exception):
    """An analysis stopped part-way by :func:`interruptible`; nothing of it was kept."""


@contextlib.contextmanager
def interruptible(model: nn.Module, should_stop: Callable[[], bool]) -> Iterator[None]:
    """While open, a module of ``model`` called from this thread raises :class:`AnalysisStoppedError`
    before it runs if ``should_stop()`` is true. Calls from other threads are not affected; the
    hooks are removed on exit, also after an error. ``model`` must not be used elsewhere meanwhile
    (a model lent by :meth:`app.weights.WeightsSource.borrow`)."""
    owner = threading.get_ident()

    def check(module: nn.Module, args: tuple) -> None:
        if threading.get_ident() == owner and should_stop():
            raise AnalysisStoppedError("stopped for a visitor's analysis")

    handles = [module.register_forward_pre_hook(check) for module in model.modules()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
