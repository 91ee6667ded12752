"""The README's Python API example runs as written, on the shipped weights and a generated photo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import random_image

from gabic import zoo

README = Path(__file__).resolve().parents[2] / "README.md"


def first_python_block(text: str) -> str:
    match = re.search(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    if match is None:
        raise AssertionError("README.md has no ```python block")
    return match.group(1)


def test_readme_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("GABIC_WEIGHTS_DIR", raising=False)
    for name in zoo.SHIPPED:
        if not zoo.available(name):
            pytest.fail(f"{name} is not in assets/weights: the README example needs the shipped weights")
    code = first_python_block(README.read_text())
    random_image(192, 256, seed=3).save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own README, the point of the test
    assert isinstance(namespace["data"], bytes) and namespace["image"].size == (256, 192)
