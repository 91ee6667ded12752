"""Eight users at once through gradio_client: each gets the answer for its own image, no errors,
bounded memory and time (issue 7, "Concurrency (app)"). The explorer holds no lock around an
analysis (each runs on a model of its own), so the users at the same quality really run together.
On the shared app server of the test run (``app_server`` in tests/conftest.py): the images are
this test's own, so none of its answers was computed before."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio_client  # noqa: E402  (a missing gradio_client fails instead of skipping)
import pytest
from app_server import AppServer, rss_mb
from helpers import random_image

from app.inputs import prepare_image  # noqa: E402
from app.service import Explorer  # noqa: E402
from app.weights import ARCHS, WeightsSource  # noqa: E402

USERS = 8
REQUEST_TIMEOUT_S = 240
#: Growth of the server's resident memory allowed while serving the 8 requests.
RSS_GROWTH_LIMIT_MB = 1500

pytestmark = pytest.mark.slow


def test_eight_concurrent_users_get_their_own_answers(
    app_server: AppServer, app_server_log: Callable[[], str], tmp_path: Path
) -> None:
    images = []
    for i in range(USERS):
        path = tmp_path / f"user{i}.png"
        # different content and sizes (random_image takes height, width)
        random_image(96 + 16 * (i % 3), 128, seed=100 + i).save(path)
        images.append(path)
    expected_keys = [prepare_image(path, 160).key for path in images]
    assert len(set(expected_keys)) == USERS and app_server.max_side == 160

    url, process = app_server.url, app_server.process
    baseline = rss_mb(process.pid)
    peak = [baseline]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb(process.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    def ask(i: int) -> dict:
        client = gradio_client.Client(url, verbose=False, download_files=False)
        quality = 1 + i % 2
        return client.predict(gradio_client.handle_file(str(images[i])), quality, 9, api_name="/analyze")

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=USERS) as pool:
        futures = [pool.submit(ask, i) for i in range(USERS)]
        answers = [f.result(timeout=REQUEST_TIMEOUT_S) for f in futures]
    elapsed = time.monotonic() - start
    stop.set()
    watcher.join()
    log = app_server_log()

    assert elapsed < REQUEST_TIMEOUT_S
    for i, answer in enumerate(answers):
        assert answer["image"]["key"] == expected_keys[i], f"user {i} got someone else's image"
        assert (answer["image"]["width"], answer["image"]["height"]) == (128, 96 + 16 * (i % 3))
        assert answer["quality"] == 1 + i % 2
        for arch in ARCHS:
            assert answer["models"][arch]["bpp"] > 0
    # metrics are a function of the image: recompute two of them here and compare
    local = Explorer(WeightsSource(device="cpu"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GABIC_WEIGHTS_DIR", str(app_server.weights_dir))
        for i in (0, USERS - 1):
            pair = local.pair(prepare_image(images[i], 160), 1 + i % 2, 9)
            for arch in ARCHS:
                assert answers[i]["models"][arch]["bpp"] == pytest.approx(pair[arch].bpp)
                assert answers[i]["models"][arch]["psnr"] == pytest.approx(pair[arch].psnr, abs=1e-3)
    assert "Traceback" not in log, log[-3000:]
    assert peak[0] - baseline < RSS_GROWTH_LIMIT_MB, f"RSS grew from {baseline:.0f} to {peak[0]:.0f} MB"
