"""A result cache bounded by memory: least-recently-used entries go once the estimated bytes of
all entries pass a budget, and a value several threads ask for at once is computed once."""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from PIL import Image

from gabic.inspect import Analysis, BlockInspections

V = TypeVar("V")


def _load_libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _load_libc()


def release_freed_memory() -> None:
    """Hand memory freed by evicted entries back to the operating system (glibc keeps freed
    heap pages for reuse, so resident memory would not shrink); a no-op without glibc."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _tensor_bytes(tensor: torch.Tensor, seen: set[int]) -> int:
    """Bytes of the storage behind ``tensor`` (a view keeps all of it alive), once per storage."""
    storage = tensor.untyped_storage()
    if storage.data_ptr() in seen:
        return 0
    seen.add(storage.data_ptr())
    return storage.nbytes()


def _image_bytes(image: Image.Image) -> int:
    return image.width * image.height * len(image.getbands())


def analysis_bytes(analysis: Analysis) -> int:
    """Estimated memory held by an :class:`gabic.inspect.Analysis`: its two images, the
    bitstream, the bit maps and, per attention block, its recorded input and, once computed,
    its graph or attention."""
    total = _image_bytes(analysis.original) + _image_bytes(analysis.reconstruction) + len(analysis.data)
    for array in (
        analysis.y_bits,
        analysis.z_bits,
        analysis.y_bits_per_pixel_map,
        analysis.z_bits_per_pixel_map,
    ):
        total += np.asarray(array).nbytes
    if isinstance(analysis.blocks, BlockInspections):
        # the recorded inputs and the blocks a view has read so far (measuring computes nothing;
        # the cache measures an entry again each time it is used)
        return total + analysis.blocks.nbytes()
    seen: set[int] = set()
    for block in analysis.blocks.values():
        for field in dataclasses.fields(block):
            value = getattr(block, field.name)
            if isinstance(value, torch.Tensor):
                total += _tensor_bytes(value, seen)
    return total


def value_bytes(value: Any, seen: set[int] | None = None, depth: int = 0) -> int:
    """Estimated bytes of arrays, tensors, images and bytes inside ``value`` (dataclasses, dicts,
    lists and tuples are walked; an :class:`Analysis` by :func:`analysis_bytes`; a small
    constant for anything else)."""
    seen = set() if seen is None else seen
    if isinstance(value, Analysis):
        return analysis_bytes(value)
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, torch.Tensor):
        return _tensor_bytes(value, seen)
    if isinstance(value, Image.Image):
        return _image_bytes(value)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if depth > 4:
        return 64
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [getattr(value, f.name) for f in dataclasses.fields(value)]
    elif isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        return 64
    return 64 + sum(value_bytes(item, seen, depth + 1) for item in items)


@dataclass
class _Entry(Generic[V]):
    value: V
    nbytes: int


class ResultCache(Generic[V]):
    """Values by key, least recently used first out once their bytes pass ``budget_bytes``.

    ``size_of(value)`` estimates an entry's bytes. The newest entry is kept even when it alone
    is over the budget. :meth:`get_or_compute` runs ``compute`` once per key even when several
    threads ask at the same time: the others wait for its result.
    """

    def __init__(self, budget_bytes: int, size_of: Callable[[V], int]):
        if budget_bytes <= 0:
            raise ValueError(f"the cache budget must be positive, got {budget_bytes} bytes")
        self.budget_bytes = int(budget_bytes)
        self.size_of = size_of
        self._entries: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._pending: dict[Hashable, threading.Event] = {}
        #: Threads waiting for each key being computed.
        self._waiting: Counter[Hashable] = Counter()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Estimated bytes of all entries."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: Hashable, accept: Callable[[V], bool] | None = None) -> V | None:
        """The value of ``key`` (now the most recently used), or ``None``; a value that
        ``accept`` rejects counts as missing."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or (accept is not None and not accept(entry.value)):
                return None
            evicted = self._used(key, entry)
        self._release(evicted)
        return entry.value

    def _used(self, key: Hashable, entry: _Entry[V]) -> list[_Entry[V]]:
        """Under the lock: ``key`` becomes the most recently used, its size is measured again (a
        value may have grown since: an analysis computes a block's attention when a view first
        reads it) and entries beyond the budget are evicted (returned, to be freed unlocked)."""
        self._entries.move_to_end(key)
        size = int(self.size_of(entry.value))
        self._bytes += size - entry.nbytes
        entry.nbytes = size
        return self._evict()

    def _evict(self) -> list[_Entry[V]]:
        evicted = []
        while self._bytes > self.budget_bytes and len(self._entries) > 1:
            evicted.append(self._entries.popitem(last=False)[1])
            self._bytes -= evicted[-1].nbytes
        return evicted

    @staticmethod
    def _release(evicted: list[_Entry[V]]) -> None:
        if evicted:
            evicted.clear()  # the cache's last references: the entries' memory is freed here
            release_freed_memory()

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value`` under ``key`` and evict least-recently-used entries beyond the budget."""
        size = int(self.size_of(value))
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[key] = _Entry(value, size)
            self._bytes += size
            evicted = [old] if old is not None else []
            evicted.extend(self._evict())
        self._release(evicted)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V],
                       accept: Callable[[V], bool] | None = None) -> V:  # fmt: skip
        """The cached value of ``key`` that ``accept`` takes, or ``compute()`` stored and returned.

        Threads asking for a key being computed wait for it; if that computation fails or
        gives a value they do not accept, one of them computes it again.
        """
        while True:
            with self._lock:
                entry = self._entries.get(key)
                found = entry is not None and (accept is None or accept(entry.value))
                if found:
                    evicted = self._used(key, entry)
                else:
                    pending = self._pending.get(key)
                    owner = pending is None
                    if owner:
                        pending = self._pending[key] = threading.Event()
                    else:
                        self._waiting[key] += 1
            if found:
                self._release(evicted)
                return entry.value
            assert pending is not None
            if not owner:
                try:
                    pending.wait()
                finally:
                    with self._lock:
                        self._waiting[key] -= 1
                        if not self._waiting[key]:
                            del self._waiting[key]
                continue
            try:
                value = compute()
                self.put(key, value)
                return value
            finally:
                with self._lock:
                    self._pending.pop(key, None)
                pending.set()

    def awaited(self, key: Hashable) -> bool:
        """True while another thread waits for the computation of ``key`` under way (a paused
        background computation must then go on: :meth:`app.service.Explorer.analysis`)."""
        with self._lock:
            return key in self._waiting

    def stats(self) -> dict[str, Any]:
        """Entries, estimated bytes and budget (for logs and benchmarks)."""
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes, "budget_bytes": self.budget_bytes}
