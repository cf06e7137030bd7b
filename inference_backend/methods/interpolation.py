"""The classical baseline: interpolate the LR volume onto the HR grid."""
from __future__ import annotations

from inference_backend.methods.base import MethodRequest, MethodResult
from inference_backend.resampling import resample


def run(request: MethodRequest) -> MethodResult:
    return MethodResult(volume=resample(request.volume, request.target, request.options["kind"], request.progress))
