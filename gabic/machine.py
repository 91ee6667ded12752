"""A short description of the machine, stored with every number we publish."""

from __future__ import annotations

import os
import platform
from pathlib import Path

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
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda" and torch.cuda.is_available():
        description["gpu"] = torch.cuda.get_device_name(device)
    return description
