"""Pausing a background analysis part-way while a visitor is being served.

An analysis runs about a thousand module calls (encoder, entropy model, decoder); while
:func:`pausable` is open, each call of a module of the given model, from the thread that opened
it, first waits as long as ``should_wait()`` is true. The prefetch (:mod:`app.prefetch`) uses it:
a visitor's event gets the CPU (and Python's lock) within milliseconds, and the prefetch's
analysis goes on where it stood once the visitor is served, so none of its work is lost.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from torch import nn

#: How often a paused analysis looks again whether it may go on.
POLL_SECONDS = 0.02


def wait_while(condition: Callable[[], bool], poll: float = POLL_SECONDS) -> None:
    """Sleep in steps of ``poll`` seconds as long as ``condition()`` is true."""
    while condition():
        time.sleep(poll)


@contextlib.contextmanager
def pausable(model: nn.Module, should_wait: Callable[[], bool], poll: float = POLL_SECONDS) -> Iterator[None]:
    """While open, a module of ``model`` called from this thread first sleeps in steps of ``poll``
    seconds while ``should_wait()`` is true. Calls from other threads are not affected; the hooks
    are removed on exit, also after an error. ``model`` must not be used elsewhere meanwhile (a
    model lent by :meth:`app.weights.WeightsSource.borrow`)."""
    owner = threading.get_ident()

    def wait(module: nn.Module, args: tuple) -> None:
        if threading.get_ident() == owner:
            wait_while(should_wait, poll)

    handles = [module.register_forward_pre_hook(wait) for module in model.modules()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
