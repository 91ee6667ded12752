"""The "warming up" page answers on the app's address until the app takes the port over."""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app_server import free_port  # noqa: E402

from app.warmup import WarmupPage  # noqa: E402


def test_warmup_page_answers_503_with_the_page_and_frees_the_port() -> None:
    port = free_port()
    page = WarmupPage("127.0.0.1", port)
    try:
        assert page.serving and page.error is None
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/any/path?x=1", timeout=5)
        assert answer.value.code == 503
        assert answer.value.headers["Retry-After"]
        assert "Warming up" in answer.value.read().decode()
    finally:
        page.stop()
    page.stop()  # idempotent
    with socket.socket() as sock:  # the port is free for the app
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_a_taken_port_is_reported_not_raised() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        page = WarmupPage("127.0.0.1", taken.getsockname()[1])
        assert not page.serving and isinstance(page.error, OSError)
        page.stop()
