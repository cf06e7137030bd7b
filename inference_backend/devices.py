"""Choosing the compute device, and telling users plainly when a GPU is not usable."""
from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inference_backend.errors import InputError, ResourceError

DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d+)?"
THREAD_VARIABLES = ("MRISR_THREADS", "OMP_NUM_THREADS")  # a user's or scheduler's choice, honoured as given


@dataclass(frozen=True)
class DeviceInfo:
    """A device users can pick: ``cpu``, ``cuda:i`` (with its name and memory) or ``mps``."""

    id: str
    name: str
    total_memory_gb: float | None = None
    free_memory_gb: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mps_available() -> bool:
    """Apple's Metal GPU (Apple silicon Macs), as PyTorch sees it."""
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def list_devices() -> list[DeviceInfo]:
    import torch

    devices = [DeviceInfo("cpu", f"CPU ({torch.get_num_threads()} threads)")]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            devices.append(
                DeviceInfo(f"cuda:{index}", torch.cuda.get_device_name(index), total / 2**30, free / 2**30)
            )
    if mps_available():
        devices.append(DeviceInfo("mps", "Apple GPU (Metal)"))
    return devices


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda:0`` when PyTorch sees a GPU, else ``cpu`` (an Apple GPU only when asked
    for by name: the methods are built for CUDA and the CPU); ``cuda[:i]`` and ``mps`` must exist."""
    requested = requested.strip().lower()
    if not re.fullmatch(DEVICE_PATTERN, requested):
        raise InputError(f"--device must be auto, cpu, cuda, cuda:N or mps; got {requested!r}")
    if requested == "cpu":
        return "cpu"
    import torch

    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested == "mps":
        if not mps_available():
            raise ResourceError(f"mps was requested but PyTorch {torch.__version__} sees no Apple GPU; use --device cpu")
        return "mps"
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


def available_cores() -> int:
    """The cores this process may use: its CPU affinity (set by batch schedulers and ``taskset``)
    capped by a cgroup CPU quota (containers: ``docker --cpus``), which the machine's count ignores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def configure_cpu_threads() -> int:
    """Use as many compute threads as there are cores to use (unless MRISR_THREADS or
    OMP_NUM_THREADS says how many); more threads than cores make every step wait on the others."""
    import torch

    for variable in THREAD_VARIABLES:
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            threads = int(value)
            break
    else:
        threads = available_cores()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
