from __future__ import annotations

import pytest
import torch
from helpers import tiny_codecs


@pytest.fixture(scope="package")
def tiny_models() -> dict[str, torch.nn.Module]:
    """Random-weight tiny GABIC and Zou2022, entropy tables ready."""
    return tiny_codecs(21)
