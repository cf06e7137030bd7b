"""Options of classical interpolation."""
from __future__ import annotations

from dataclasses import dataclass

from inference_backend.methods.options import MethodOptions, option

INTERPOLATION_KINDS = ("linear", "bspline", "lanczos", "zero-fill")


@dataclass(frozen=True)
class InterpolationOptions(MethodOptions):
    kind: str = option("bspline", "interpolation kernel", choices=INTERPOLATION_KINDS)
