from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import TINY_CONFIG, write_random_weights  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
#: Where the browser test finds Debian's Chromium.
CHROMIUM = Path("/usr/bin/chromium")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A browser test is a slow test: ``-m "not slow"`` (``make test-fast``) leaves it out."""
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    path = SHARED / "data" / "kodak"
    if not path.is_dir():
        pytest.skip("../shared/data/kodak is not present (only CI and developers have it)")
    return path
