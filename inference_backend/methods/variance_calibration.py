"""The variance map as the model card's calibration says to read it.

The spread of a few diffusion samples is not the error a voxel has: on the development scans
Res-SRDiff's 90% interval held the truth in a fifth of the voxels. ``benchmarks/calibrate_variance.py``
measures, on a training scan the evaluation never uses, the factor on the standard deviation
that makes 90% of voxels fall within 1.645 sigma (split conformal calibration), per number of
samples, acquisition and scale factor, and writes it into the model card; a job scales its
variance by the entry nearest to its own sample count and factor, and says in its report what
the map then means. The sample count matters: the spread of 2 samples is a far noisier
estimate than that of 8, so the same nominal interval needs a wider factor.

Before the factor, the spread is pooled over each voxel's neighbours (a Gaussian of
:data:`POOLING_SD_VOXELS`): a few samples' spread is a noisy estimate of one voxel's uncertainty,
and neighbours share theirs, so the pooled map ranks the error better (the width chosen on a
training scan, chris_t1; the gain on whole volumes: benchmarks/results/studies/trust-maps). A
card says whether its factors were fitted on the pooled spread; a card without it is read as
fitted on the raw one.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from inference_backend.imaging.target import acquisition_of
from inference_backend.methods.options import MethodOptions
from inference_backend.methods.slicing import SlicePlan

RAW_MEANING = "the samples' spread, not calibrated: a relative map"
POOLING_SD_VOXELS = 1.0  # the neighbourhood the spread is pooled over before calibration
# options that leave the samples as they are (or name the model, whose card this is)
NOT_SAMPLING_OPTIONS = ("variance", "engine", "batch_size", "model")


@dataclass(frozen=True)
class VarianceCalibration:
    scale: float  # on the standard deviation (the variance is scaled by its square)
    meaning: str
    pooling_sd_voxels: float = 0.0  # the spread is pooled over this Gaussian neighbourhood first (0: not)

    def apply(self, variance: np.ndarray) -> np.ndarray:
        """The calibrated variance map from the samples' raw spread."""
        return pooled(variance, self.pooling_sd_voxels) * self.scale**2


def pooled(variance: np.ndarray, sd_voxels: float) -> np.ndarray:
    """``variance`` averaged over a Gaussian neighbourhood of ``sd_voxels`` (itself for 0)."""
    if sd_voxels <= 0:
        return variance
    return ndimage.gaussian_filter(variance, sd_voxels, mode="nearest").astype(variance.dtype)


def acquisition_and_factor(plan: SlicePlan) -> tuple[str, float]:
    """("thick-slices", the slice axis's factor) or ("in-plane", the larger in-plane factor)."""
    return acquisition_of(plan.coarse_axes), max((plan.factors[a] for a in plan.coarse_axes), default=1.0)


def nearest_key(table: dict[str, Any], value: float) -> str:
    """The key of ``table`` (a number as text) nearest to ``value`` on a log scale."""
    return min(table, key=lambda key: abs(math.log(float(key) / value)))


def sampling_options(options: MethodOptions) -> dict[str, Any]:
    """The options a calibration holds for: every option that can change the samples."""
    return {name: value for name, value in dataclasses.asdict(options).items() if name not in NOT_SAMPLING_OPTIONS}


def options_mismatch(card: dict[str, Any], options: MethodOptions) -> str:
    """The job's options that differ from those the card's calibration was fitted with ("" when
    none): another sampler spreads its samples otherwise, so its factor would not hold."""
    fitted = (card.get("variance_calibration") or {}).get("options", {})
    current = sampling_options(options)
    return ", ".join(f"{name}={current.get(name)} (fitted with {value})" for name, value in fitted.items() if current.get(name) != value)


def variance_report(
    card: dict[str, Any], plan: SlicePlan, samples: int, options: MethodOptions
) -> tuple[VarianceCalibration | None, dict[str, Any]]:
    """(the calibration to apply, or None: the raw spread; the report's ``variance`` entry)."""
    if options.variance != "calibrated":
        return None, {"calibrated": False, "meaning": RAW_MEANING}
    mismatch = options_mismatch(card, options)
    if mismatch:
        return None, {"calibrated": False, "meaning": f"{RAW_MEANING}; the model card's calibration does not hold for {mismatch}"}
    calibration = calibration_for(card, plan, samples)
    if calibration is None:
        return None, {"calibrated": False, "meaning": RAW_MEANING}
    return calibration, {"calibrated": True, "scale_on_std": calibration.scale, "pooling_sd_voxels": calibration.pooling_sd_voxels,
                         "meaning": calibration.meaning}  # fmt: skip


def calibration_for(card: dict[str, Any], plan: SlicePlan, samples: int) -> VarianceCalibration | None:
    """The card's calibration for this job's sample count and acquisition, at the calibrated
    count and factor nearest to its own; None where the card has none for it."""
    entry = card.get("variance_calibration") or {}
    by_samples = entry.get("scales", {})
    if not by_samples:
        return None
    count = nearest_key(by_samples, samples)
    acquisition, factor = acquisition_and_factor(plan)
    scales = by_samples[count].get(acquisition)
    if not scales:
        return None
    nearest = nearest_key(scales, factor)
    pooling = float(entry.get("pooling_sd_voxels", 0.0))
    spread = f"the samples' spread pooled over a Gaussian of {pooling:g} voxel" if pooling else "the samples' spread"
    meaning = (
        f"{entry['level']:.0%} of voxels within {entry['z']:.3f} sigma of the mean on calibration data "
        f"({entry['data']}, {acquisition} x{nearest}, {count} samples); sigma = {spread} x {scales[nearest]:.3g}"
    )
    return VarianceCalibration(float(scales[nearest]), meaning, pooling)
