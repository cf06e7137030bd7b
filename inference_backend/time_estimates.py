"""How long a job will take, from rates measured on a reference machine (no torch import: the
Slicer panel asks before every Apply).

``benchmarks/speed.py`` times every method on two head sizes and writes ``measured_speed.json``
beside this file: per method and kind of device, a fixed cost (model load, Res-SRDiff's
adaptation to the scan) and seconds per million output voxels for the first sample and for
each further one (Res-SRDiff's first sample is its one-call posterior mean, further ones the
4-step sampler). A machine with more cores than the reference runs faster; the text says which
machine the rate is from.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

RATES_FILE = Path(__file__).with_name("measured_speed.json")
REFERENCE_OUTPUT = (181, 217, 181)  # a whole head at 1 mm, what `mrisr methods` quotes without an input


@dataclass(frozen=True)
class Rate:
    fixed_s: float
    first_sample_s_per_mvoxel: float
    further_sample_s_per_mvoxel: float

    def seconds(self, output_voxels: int, samples: int) -> float:
        megavoxels = output_voxels / 1e6
        return self.fixed_s + megavoxels * (self.first_sample_s_per_mvoxel + (samples - 1) * self.further_sample_s_per_mvoxel)


@cache
def measured() -> dict[str, Any]:
    """The committed measurements ({} where the file is missing, e.g. a trimmed install)."""
    return json.loads(RATES_FILE.read_text()) if RATES_FILE.exists() else {}


def rate_for(method: str, device: str) -> Rate | None:
    """The measured rate of ``method`` on this kind of device (``cuda:1`` -> ``cuda``), or None."""
    entry = measured().get("rates", {}).get(device.split(":")[0], {}).get(method)
    return None if entry is None else Rate(**entry)


def expected_time(method: str, output_voxels: int, samples: int, device: str) -> str:
    """"about 14 s (measured on a 2-core CPU)", or why there is no estimate (``auto``: the CPU,
    the device a job without a GPU runs on)."""
    kind = "cpu" if device == "auto" else device.split(":")[0]
    rate = rate_for(method, kind)
    if rate is None:
        return f"not measured for {method} on {kind}"
    return f"about {format_seconds(rate.seconds(output_voxels, samples))} (measured on {measured()['machines'][kind]})"


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
