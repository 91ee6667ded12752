"""Shared fixtures of the browser tests: a headless Chromium per test module and pages of the
shared app server (``app_server`` in ``tests/conftest.py``, one server for the whole run).

- ``chromium``: Debian's Chromium (``/usr/bin/chromium``) launched through Playwright's sync API
  once per test module (about a second), closed after the module's last test. Without it the
  test skips, or fails under ``GABIC_REQUIRE_BROWSER=1`` (CI). A test opens its own context and
  page from it (``chromium.new_context(...)``), so cookies, storage and Gradio sessions are never
  shared.
- ``app_page``: a new page (its own context, 1400×1800 viewport, ``TIMEOUT_MS`` default timeout)
  on the shared app server, with the start-up sample already analysed; closed after the test.
  Pair it with ``app_server_log`` to check the server's log of this test alone.

Playwright's sync API allows one instance at a time per thread: inside a module that uses
``chromium``, take the browser from it instead of calling ``sync_playwright()`` (other modules may
start their own; the module scope is what lets them).
Mark browser tests ``pytest.mark.browser`` (which makes them slow as well).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app_server import CHROMIUM, CHROMIUM_ARGS, AppServer  # noqa: E402

#: Default timeout of a page's waits and expectations: generous for a loaded 2-core runner.
TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Headless Debian Chromium for the test module (a Playwright ``Browser``)."""
    if not CHROMIUM.exists():
        if os.environ.get("GABIC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"GABIC_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; CI sets GABIC_REQUIRE_BROWSER=1)")
    import playwright.sync_api as playwright  # a missing playwright fails the test

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def app_page(chromium: object, app_server: AppServer) -> Iterator[object]:
    """A fresh page of the shared app server, the start-up sample analysed."""
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1400, "height": 1800})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(app_server.url)
        expect(page.locator("#status")).to_contain_text("Analysed", timeout=TIMEOUT_MS)
        yield page
    finally:
        context.close()
