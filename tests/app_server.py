"""Start the app in a subprocess on a free loopback port (for the concurrency, API and browser tests).

Tests that need a server but no server of their own use the session-scoped ``app_server`` fixture
of ``tests/conftest.py`` (one :class:`AppServer` for the whole run); :func:`running_app` is for a
test that needs other weights or options."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Debian's Chromium (never a Playwright download) and its flags for the browser tests: headless, offline.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

#: The app's log line at the end of a new image's handler (app.handlers.App.load_image).
READY = re.compile(r"^(\S+ \S+) gabic\.app INFO new image .*: views ready in ([0-9.]+) s$")


def handler_times(log: str) -> list[tuple[float, float]]:
    """``(start, end)`` wall-clock times of every new image's handler in the text of the server's log."""
    times = []
    for line in log.splitlines():
        found = READY.match(line)
        if found:
            end = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            times.append((end - float(found.group(2)), end))
    return times


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB, from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # the process has ended
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def running_app(weights_dir: Path, log_path: Path, max_side: int = 160, startup_s: float = 240,
                extra: tuple[str, ...] = (), prefetch: bool = False) -> Iterator[tuple[str, subprocess.Popen]]:  # fmt: skip
    """``python -m app`` with the weights of ``weights_dir`` on 127.0.0.1:<free port>; yields
    (url, process). ``prefetch``: analyse other qualities in the background as the app does by
    default (off for tests: nothing runs between a test's requests, so its timing is its own and
    a shared server is idle between tests)."""
    port = free_port()
    # unbuffered: a test may read the log while the server runs (see AppServer.log_since)
    env = {**os.environ, "GABIC_WEIGHTS_DIR": str(weights_dir), "GRADIO_ANALYTICS_ENABLED": "False",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    command = [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
               "--max-side", str(max_side), *([] if prefetch else ["--no-prefetch"]), "--threads", "2", *extra]  # fmt: skip
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + startup_s
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"the app exited with {process.returncode}:\n{log_path.read_text()[-3000:]}"
                    )
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the app did not start in {startup_s} s:\n{log_path.read_text()[-3000:]}"
                    )
                time.sleep(1)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class AppServer:
    """A running app: its address, its process and its log (stdout and stderr together).

    Shared by several tests, so a test reads only its own part of the log: take
    :meth:`log_offset` when it starts and read :meth:`log_since` that offset when it ends."""

    url: str
    process: subprocess.Popen
    log_path: Path
    weights_dir: Path
    max_side: int

    def log_offset(self) -> int:
        """The log's length in bytes now."""
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        """What the server logged after ``offset`` (from :meth:`log_offset`)."""
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None
