"""The variance map as the model card's calibration says to read it.

The spread of a few diffusion samples is not the error a voxel has: on the development scans
Res-SRDiff's 90% interval held the truth in a fifth of the voxels. ``benchmarks/calibrate_variance.py``
measures, on a training scan the evaluation never uses, the factor on the standard deviation
that makes 90% of voxels fall within 1.645 sigma (split conformal calibration), per acquisition
and scale factor, and writes it into the model card; a job scales its variance by it (the
nearest calibrated factor) and says in its report what the map then means.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from inference_backend.methods.slicing import SlicePlan


@dataclass(frozen=True)
class VarianceCalibration:
    scale: float  # on the standard deviation (the variance is scaled by its square)
    meaning: str


def acquisition_and_factor(plan: SlicePlan) -> tuple[str, float]:
    """("thick-slices", the slice axis's factor) or ("in-plane", the larger in-plane factor)."""
    kind = {1: "thick-slices", 2: "in-plane"}.get(len(plan.coarse_axes), "isotropic")
    return kind, max((plan.factors[a] for a in plan.coarse_axes), default=1.0)


def calibration_for(card: dict[str, Any], plan: SlicePlan) -> VarianceCalibration | None:
    """The card's calibration for this job's acquisition, at the calibrated factor nearest to
    its own; None where the card has none for it."""
    entry = card.get("variance_calibration")
    acquisition, factor = acquisition_and_factor(plan)
    scales = (entry or {}).get("scales", {}).get(acquisition)
    if not scales:
        return None
    nearest = min(scales, key=lambda calibrated: abs(math.log(float(calibrated) / factor)))
    level = entry["level"]
    meaning = (
        f"{level:.0%} of voxels within {entry['z']:.3f} sigma of the mean on calibration data "
        f"({entry['data']}, {acquisition} x{nearest}, {entry['samples']} samples); sigma = the samples' spread x {scales[nearest]:.3g}"
    )
    return VarianceCalibration(float(scales[nearest]), meaning)
