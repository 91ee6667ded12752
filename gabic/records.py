"""What every published number is stored with: the machine it came from, and the JSON file it
went to (used by evaluation, training and the benchmarks)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: torch.device | str | None = None) -> dict[str, object]:
    """CPU model, core and thread counts, torch version and the device (GPU name if CUDA)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    description: dict[str, object] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        # the vector kernels PyTorch chose on this CPU (e.g. AVX2, AVX512): two CPUs of the same
        # name can differ here, and it changes the speed of every element-wise operation
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda" and torch.cuda.is_available():
        description["gpu"] = torch.cuda.get_device_name(device)
    return description


def write_json(path: str | Path, data: Any, indent: int = 2) -> Path:
    """Write ``data`` as JSON to ``path`` (parent folders created), print where, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent) + "\n")
    print(f"wrote {path}")
    return path
