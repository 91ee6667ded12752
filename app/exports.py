"""Where the app writes the HTML reports users download and the pictures its pages show: a
temporary folder of this process, removed when the process exits, holding only the newest few."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PIL import Image

#: Reports kept in the folder; older ones are deleted when a new one is written (Gradio has
#: already copied a report into its own cache by the time the user downloads it).
KEEP_REPORTS = 16


class ExportFolder:
    """A folder for report files.

    Without ``folder`` a new temporary folder is made and removed at interpreter exit (or by
    :meth:`remove`); a given ``folder`` is used as it is and never removed. Either way, writing
    a report deletes all but the ``keep`` newest ``*.html`` files.
    """

    def __init__(self, folder: str | Path | None = None, keep: int = KEEP_REPORTS):
        self.keep = max(1, int(keep))
        self.owned = folder is None
        self.path = Path(tempfile.mkdtemp(prefix="gabic-reports-")) if folder is None else Path(folder)
        self.path.mkdir(parents=True, exist_ok=True)
        if self.owned:
            atexit.register(self.remove)

    def write(self, name: str, text: str) -> Path:
        """Write ``text`` as ``name`` (a plain file name) and prune old reports; returns the path."""
        if Path(name).name != name:
            raise ValueError(f"not a plain file name: {name!r}")
        path = self.path / name
        path.write_text(text, encoding="utf-8")
        self.prune(keep_also=path)
        return path

    def prune(self, keep_also: Path | None = None) -> list[Path]:
        """Delete all but the :attr:`keep` newest reports (never ``keep_also``); returns the deleted."""
        reports = sorted(self.path.glob("*.html"), key=_modified, reverse=True)
        deleted = [p for p in reports[self.keep :] if p != keep_also]
        for path in deleted:
            path.unlink(missing_ok=True)
        return deleted

    def remove(self) -> None:
        """Delete the folder if this object made it."""
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


def _modified(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # deleted meanwhile by another export
        return 0


#: Pictures remembered by their sources and parameters (:meth:`ImageFiles.drawn`).
KEEP_DRAWN = 256
#: Picture files kept on disk. The folder is served as it is (Gradio copies nothing out of it),
#: so a file must outlive the moment a browser asks for it, also while 30 visitors each get up
#: to seven new pictures per event; the rest are deleted, oldest first. A 481×321 photo's PNG is
#: about 270 kB and a map's JPEG about 45 kB: at most about 100 MB.
KEEP_FILES = 512


class ImageFiles:
    """The pictures the page shows, as files written once: lossless PNG, or JPEG for pictures of
    maps.

    Gradio would otherwise encode every returned PIL image again on every event (and as lossy
    WebP by default, which would blur the very differences between codecs the page shows).
    Every picture is remembered by the objects it was made of and its parameters
    (:meth:`drawn`; an image as it is, by :meth:`__call__`): the cached analyses hand out the
    same objects, so a quality scrub back to a computed quality draws and writes nothing, and
    the page gets the same files again.
    """

    def __init__(self, folder: Path, keep_drawn: int = KEEP_DRAWN, keep_files: int = KEEP_FILES):
        self.path = Path(folder) / "images"
        self.path.mkdir(parents=True, exist_ok=True)
        self.keep_drawn = max(8, int(keep_drawn))
        self.keep_files = max(self.keep_drawn, int(keep_files))
        self._drawn: OrderedDict[tuple, tuple[tuple[weakref.ref, ...], Path]] = OrderedDict()
        self._written: OrderedDict[Path, None] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, image: Image.Image, lossy: bool = False) -> str:
        """The path of a PNG file of ``image`` (written now unless it was already), or of a
        JPEG file (quality 90) when ``lossy``: for pictures of maps, a fifth of the bytes and
        a tenth of the time of a PNG."""
        return self.drawn(("image", lossy), (image,), lambda: image, lossy)

    def drawn(self, key: tuple, sources: tuple[object, ...], draw: Callable[[], Image.Image],
              lossy: bool = False) -> str:  # fmt: skip
        """The file of the picture ``draw()`` makes of ``sources`` (analyses, images) with the
        parameters ``key``: drawn and written the first time, the same file afterwards while the
        very same source objects are asked for with an equal ``key``. Sources are held by weak
        reference (a picture never keeps an analysis the cache let go) and checked by identity."""
        entry_key = (key, tuple(id(source) for source in sources))
        with self._lock:
            found = self._drawn.get(entry_key)
            if found is not None:
                refs, path = found
                if all(ref() is source for ref, source in zip(refs, sources, strict=True)) and path.is_file():
                    self._drawn.move_to_end(entry_key)
                    return str(path)
        path = self._write(draw(), lossy)
        with self._lock:
            self._drawn[entry_key] = (tuple(weakref.ref(source) for source in sources), path)
            while len(self._drawn) > self.keep_drawn:
                self._drawn.popitem(last=False)
        return str(path)

    def _write(self, image: Image.Image, lossy: bool) -> Path:
        if lossy:
            path = self.path / f"{uuid.uuid4().hex}.jpg"
            image.save(path, format="JPEG", quality=90)
        else:
            path = self.path / f"{uuid.uuid4().hex}.png"
            image.save(path, format="PNG", compress_level=1)
        with self._lock:
            self._written[path] = None
            while len(self._written) > self.keep_files:
                old, _ = self._written.popitem(last=False)
                old.unlink(missing_ok=True)
        return path
