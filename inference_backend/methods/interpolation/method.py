"""The classical baseline: interpolate the LR volume onto the HR grid."""
from __future__ import annotations

import numpy as np

from inference_backend.errors import InputError
from inference_backend.imaging.resampling import resample
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.methods.base import MethodRequest, MethodResult


def run(request: MethodRequest) -> MethodResult:
    if request.options.kind == "zero-fill":
        return MethodResult(volume=zero_fill(request.volume, request.target))
    return MethodResult(volume=resample(request.volume, request.target, request.options.kind, request.progress))


def zero_fill(volume: Volume, target: Grid) -> Volume:
    """k-space zero-filling (band-limited sinc interpolation): what a scanner does to display a
    coarser acquisition matrix on a finer grid. Needs the field of view of the input."""
    from inference_backend.operators.consistency import project

    if not volume.grid.with_spacing(target.spacing).matches(target):
        raise InputError("zero-fill interpolation needs an output grid over the input's field of view (use --scale or --spacing)")
    return Volume(project(np.zeros(target.size, dtype=np.float32), volume.array, "kspace"), target)
