"""Choosing the compute device, and telling users plainly when a GPU is not usable."""
from __future__ import annotations

import re
from dataclasses import dataclass

from inference_backend.errors import InputError, ResourceError


@dataclass(frozen=True)
class DeviceInfo:
    """A device users can pick: ``cpu`` or ``cuda:i`` with its name and memory."""

    id: str
    name: str
    total_memory_gb: float | None = None
    free_memory_gb: float | None = None


def list_devices() -> list[DeviceInfo]:
    import torch

    devices = [DeviceInfo("cpu", f"CPU ({torch.get_num_threads()} threads)")]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            devices.append(
                DeviceInfo(f"cuda:{index}", torch.cuda.get_device_name(index), total / 2**30, free / 2**30)
            )
    return devices


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda:0`` when PyTorch sees a GPU, else ``cpu``; ``cuda[:i]`` must exist."""
    requested = requested.strip().lower()
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", requested):
        raise InputError(f"--device must be auto, cpu, cuda or cuda:N; got {requested!r}")
    if requested == "cpu":
        return "cpu"
    import torch

    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ResourceError(
            f"{requested} was requested but PyTorch {torch.__version__} ({build}) sees no CUDA GPU; "
            "use --device cpu, or run the backend with a CUDA-enabled Python"
        )
    index = int(requested.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ResourceError(f"{requested} does not exist: PyTorch sees {torch.cuda.device_count()} GPU(s)")
    return f"cuda:{index}"
