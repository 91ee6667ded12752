"""Where the app writes the HTML reports users download: a temporary folder of this process,
removed when the process exits, holding only the newest few reports."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

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
