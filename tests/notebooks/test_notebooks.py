"""Execute every companion notebook top to bottom in fast mode (issue 5).

Each notebook runs in a fresh kernel with ``GABIC_NOTEBOOK_FAST=1``. The
shipped weights are used when ``assets/weights/`` (or ``$GABIC_WEIGHTS_DIR``)
has them all; otherwise tiny random-weight models are written to a temporary
folder, so the notebooks' code paths are checked even before training ends.
A cell that raises fails the test with the cell's source and traceback.

Run only these:  ``pytest tests/notebooks/test_notebooks.py``
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import ipykernel  # noqa: F401 - the kernel the notebooks run in; missing, the test must fail, not skip
import nbclient
import nbformat
import pytest

from gabic import zoo

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
#: Committed notebooks must stay small (issue 5).
MAX_NOTEBOOK_BYTES = 1_000_000
#: Per cell; fast-mode cells take well under a minute. A lost IOPub message (seen once with
#: output widgets written during execution) fails the test instead of stalling it silently.
CELL_TIMEOUT_S = 300


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


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, notebook_weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this process's environment when it starts.
    monkeypatch.setenv("GABIC_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("GABIC_WEIGHTS_DIR", str(notebook_weights_dir))
    # One intra-op thread: the fast-mode images are small, and on a loaded 2-core runner
    # extra OpenMP threads make things slower, not faster. An explicit setting wins.
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        raise_on_iopub_timeout=True,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the failing cell
    elapsed = time.perf_counter() - start
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, errors
    print(f"{path.name}: {elapsed:.1f} s")
