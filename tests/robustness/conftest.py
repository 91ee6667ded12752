from __future__ import annotations

import pytest
import torch
from helpers import TINY_CONFIG

from gabic.models import build_model


@pytest.fixture(scope="package")
def tiny_models() -> dict[str, torch.nn.Module]:
    """Random-weight tiny GABIC and Zou2022, entropy tables ready."""
    out = {}
    for arch in ("gabic", "zou2022"):
        torch.manual_seed(21)
        model = build_model(arch, TINY_CONFIG).eval()
        model.update(force=True)
        out[arch] = model
    return out
