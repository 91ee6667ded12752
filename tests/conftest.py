from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import AppServer, running_app  # noqa: E402
from helpers import TINY_CONFIG, write_random_weights  # noqa: E402

#: PyTorch's intra-op threads in the test process: one (``GABIC_TEST_THREADS`` overrides). The tests
#: run tiny models on small images, where a second thread gains little, and on a loaded 2-core
#: runner (the app server, notebook kernels, training beside the tests) two threads waiting for
#: each other at every operation made a 200×134 round trip take 2.5 s instead of 0.1 s.
torch.set_num_threads(int(os.environ.get("GABIC_TEST_THREADS", "1")))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
#: Where the browser test finds Debian's Chromium.
CHROMIUM = Path("/usr/bin/chromium")


#: The test files that took longest on a 2-core machine (``pytest --durations=0``, summed per
#: file), longest first. They are collected first, so that with ``-n 2 --dist loadfile`` (``make
#: test``) no worker starts one of them when the other is nearly done. Order only: every test runs.
LONGEST_FIRST = (
    "notebooks/test_notebooks.py", "train/test_distributed.py", "train/test_train.py",
    "e2e/test_browser.py", "bench/test_bench.py", "app/test_app.py", "app/test_app_concurrency.py",
    "robustness/test_determinism.py", "zoo/test_zoo.py", "codec/test_cli.py", "train/test_data.py",
)  # fmt: skip


def _file_rank(item: pytest.Item) -> int:
    path, tests = Path(str(item.path)).resolve(), Path(__file__).resolve().parent
    relative = path.relative_to(tests).as_posix() if path.is_relative_to(tests) else ""
    return LONGEST_FIRST.index(relative) if relative in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A browser test is a slow test: ``-m "not slow"`` (``make test-fast``) leaves it out. The
    files of :data:`LONGEST_FIRST` come first (a stable sort: the rest keep their order)."""
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)
    items.sort(key=_file_rank)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """With ``GABIC_REQUIRE_BROWSER=1`` (CI) a browser test fails, not skips, without Chromium or
    Playwright, and says which is missing."""
    if item.get_closest_marker("browser") is None or os.environ.get("GABIC_REQUIRE_BROWSER") != "1":
        return
    if not CHROMIUM.exists():
        pytest.fail(f"GABIC_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        pytest.fail(f"GABIC_REQUIRE_BROWSER=1 but Playwright is not importable: {error}")


@pytest.fixture(scope="session")
def random_weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight 'shipped' models in tiny configuration, for tests of code that loads by name."""
    return write_random_weights(tmp_path_factory.mktemp("weights"), TINY_CONFIG)


@pytest.fixture()
def use_random_weights(random_weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point :func:`gabic.zoo.load` at the random weights for one test."""
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(random_weights_dir))
    return random_weights_dir


@pytest.fixture(scope="module")
def weights_env(random_weights_dir: Path):
    """Like :func:`use_random_weights`, for a whole test module (module-scoped fixtures need it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GABIC_WEIGHTS_DIR", str(random_weights_dir))
        yield random_weights_dir


#: ``--max-side`` of the shared app server: uploads are analysed at most 160 px on the long side.
APP_SERVER_MAX_SIDE = 160


@pytest.fixture(scope="session")
def app_server(random_weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """One ``python -m app`` for the whole test run, shared by every test that talks to a server
    (gradio_client, HTTP, the browser): the tiny random weights of :func:`random_weights_dir`,
    ``--max-side 160``, no prefetch, CPU, two threads, on 127.0.0.1 and a free port. Started by the
    first test that asks for it (about 10 s), stopped at the end of the run.

    A test gets ``app_server.url`` and reads its own part of the server's log with the
    :func:`app_server_log` fixture. Each caller's answers are its own (the server keeps a session
    per page and caches analyses by image content), so tests only share the cost of the start-up.
    A test that needs other weights or options starts its own with :func:`app_server.running_app`.
    Browser tests: ``tests/e2e/conftest.py`` adds a shared Chromium and a page of this server."""
    log = tmp_path_factory.mktemp("app-server") / "server.log"
    with running_app(random_weights_dir, log, max_side=APP_SERVER_MAX_SIDE) as (url, process):
        yield AppServer(url, process, log, random_weights_dir, APP_SERVER_MAX_SIDE)


@pytest.fixture()
def app_server_log(app_server: AppServer) -> Iterator[Callable[[], str]]:
    """What the shared server logged since this test started: call it when the test has done its
    requests (the server writes its log unbuffered). Fails the test if the server died meanwhile."""
    offset = app_server.log_offset()
    yield lambda: app_server.log_since(offset)
    assert app_server.alive(), f"the shared app server exited:\n{app_server.log_since(offset)[-3000:]}"


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    path = SHARED / "data" / "kodak"
    if not path.is_dir():
        pytest.skip("../shared/data/kodak is not present (only CI and developers have it)")
    return path
