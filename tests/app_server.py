"""Start the app in a subprocess on a free loopback port (for the concurrency and browser tests)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    default (off for tests, so that each test's timing and cache are its own)."""
    port = free_port()
    env = {**os.environ, "GABIC_WEIGHTS_DIR": str(weights_dir), "GRADIO_ANALYTICS_ENABLED": "False",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}  # fmt: skip
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
