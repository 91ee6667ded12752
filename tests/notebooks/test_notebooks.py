"""Execute every companion notebook top to bottom in fast mode (issue 5).

Each notebook runs in a fresh kernel with ``GABIC_NOTEBOOK_FAST=1``. The
shipped weights are used when ``assets/weights/`` (or ``$GABIC_WEIGHTS_DIR``)
has them all; otherwise tiny random-weight models are written to a temporary
folder, so the notebooks' code paths are checked even before training ends.
A cell that raises fails the test with the cell's source and traceback.

The kernels are single-threaded, so two notebooks run at a time (``PARALLEL``),
started in order when the first notebook test asks for its result; each test
waits for its own notebook and reports its own failure.

Run only these:  ``pytest tests/notebooks/test_notebooks.py``
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from queue import Empty

import ipykernel  # noqa: F401 - the kernel the notebooks run in; missing, the test must fail, not skip
import nbclient
import nbformat
import pytest
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager

from gabic import zoo

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
#: Committed notebooks must stay small (issue 5).
MAX_NOTEBOOK_BYTES = 1_000_000
#: Per cell; fast-mode cells take well under a minute. A lost IOPub message (seen once with
#: output widgets written during execution) fails the test instead of stalling it silently.
CELL_TIMEOUT_S = 300
#: Notebooks executed at the same time, each in its own kernel on one intra-op thread.
PARALLEL = 2
#: Longest single wait of the kernel client for a message (:class:`_SlicedWaitChannel`).
WAIT_SLICE_S = 2.0


def _all_shipped(folder: Path) -> bool:
    one_rate = all(
        (folder / f"{name}-q{quality}.safetensors").is_file()
        for name in zoo.ONE_RATE_FAMILIES.values()
        for quality in zoo.QUALITIES
    )
    return one_rate and all(
        (folder / f"{name}.safetensors").is_file() for name in zoo.VARIABLE_RATE_FAMILIES.values()
    )


@pytest.fixture(scope="module")
def notebook_weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped weights if all are present, else tiny random ones in a temporary folder."""
    shipped = zoo.weights_dir()
    if _all_shipped(shipped):
        return shipped
    from helpers import TINY_CONFIG, write_random_weights

    return write_random_weights(tmp_path_factory.mktemp("notebook-weights"), TINY_CONFIG)


def test_notebooks_exist() -> None:
    names = [path.name for path in NOTEBOOKS]
    assert names == [
        "01_quickstart.ipynb",
        "02_inside_one_window.ipynb",
        "03_where_the_bits_go.ipynb",
        "04_rate_distortion_and_cost.ipynb",
        "05_inside_the_entropy_model.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_small_and_valid(path: Path) -> None:
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name} is {path.stat().st_size:,} bytes"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == "markdown", "a notebook starts with a prose cell"
    assert any(cell.cell_type == "code" for cell in notebook.cells)


def _kernel_env(weights_dir: Path) -> dict[str, str]:
    """The environment of a notebook's kernel: fast mode, the weights, no display."""
    # One intra-op thread: the fast-mode images are small, and on a loaded 2-core runner
    # extra OpenMP threads make things slower, not faster. An explicit setting wins.
    return {**os.environ, "GABIC_NOTEBOOK_FAST": "1", "GABIC_WEIGHTS_DIR": str(weights_dir),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "MPLBACKEND": "Agg"}  # fmt: skip


class _SlicedWaitChannel(AsyncZMQSocketChannel):
    """A kernel channel that waits for a message in slices of :data:`WAIT_SLICE_S` up to the
    caller's timeout.

    pyzmq's asyncio poll can miss the wake-up of a message that has already arrived (the socket's
    descriptor is edge-triggered) and only finds the message when its wait times out. nbclient
    waits for a cell's reply for the whole cell timeout: under ``pytest -n 2`` the last cell of
    notebook 05 (an output widget) finished at once in the kernel, and the test got its reply
    300 s later, in three of four runs. Here a missed wake-up costs at most one slice.
    """

    async def get_msg(self, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAIT_SLICE_S if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await super().get_msg(timeout=min(WAIT_SLICE_S, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class _SlicedWaitClient(AsyncKernelClient):
    shell_channel_class = _SlicedWaitChannel
    iopub_channel_class = _SlicedWaitChannel


async def _execute(path: Path, env: dict[str, str]) -> tuple[nbformat.NotebookNode, float]:
    notebook = nbformat.read(path, as_version=4)
    manager = AsyncKernelManager(kernel_name="python3")
    manager.client_factory = _SlicedWaitClient
    client = nbclient.NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        raise_on_iopub_timeout=True,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    start = time.perf_counter()
    await client.async_execute(env=env)  # raises CellExecutionError naming the failing cell
    return notebook, time.perf_counter() - start


@pytest.fixture(scope="module")
def executions(notebook_weights_dir: Path, request: pytest.FixtureRequest) -> Iterator[dict[Path, Future]]:
    """The notebooks of the selected tests executed in the background, ``PARALLEL`` at a time, in
    order: path -> a future of (executed notebook, seconds), or of the error its execution raised."""
    env = _kernel_env(notebook_weights_dir)
    selected = {item.callspec.params["path"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_notebook_runs"}  # fmt: skip
    futures: dict[Path, Future] = {path: Future() for path in NOTEBOOKS if path in selected}

    async def run_all() -> None:
        slots = asyncio.Semaphore(PARALLEL)

        async def run(path: Path) -> None:
            async with slots:
                try:
                    futures[path].set_result(await _execute(path, env))
                except BaseException as error:  # noqa: BLE001 - handed to the notebook's test
                    futures[path].set_exception(error)

        await asyncio.gather(*(run(path) for path in futures))

    runner = threading.Thread(target=asyncio.run, args=(run_all(),), name="notebooks", daemon=True)
    runner.start()
    yield futures
    runner.join(timeout=CELL_TIMEOUT_S)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, executions: dict[Path, Future]) -> None:
    notebook, elapsed = executions[path].result()  # re-raises the notebook's CellExecutionError
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, errors
    assert all(
        cell.get("execution_count") for cell in notebook.cells if cell.cell_type == "code" and cell.source
    )
    print(f"{path.name}: {elapsed:.1f} s")
