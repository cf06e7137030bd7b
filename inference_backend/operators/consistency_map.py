"""Where a result contradicts what the scanner measured: the result passed back through the
job's acquisition model (:class:`~inference_backend.operators.acquisition.AcquisitionModel`),
minus the acquired volume, in units of the acquired volume's noise standard deviation, on the
input's grid.

What it catches: anything that changes what the acquired voxels would have measured: an erased
or invented lesion, an intensity shift, a misplaced edge. What it cannot catch: detail between
the acquired samples that averages out under the profile, which is what super-resolution adds
and what no acquisition saw (the variance map is for that). Where the scanner's slice profile is
not the model's Gaussian, a correct result also shows a residual at sharp edges.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from inference_backend.imaging.head import head_mask
from inference_backend.imaging.noise import noise_sd
from inference_backend.imaging.target import Refinement
from inference_backend.imaging.volume import Volume
from inference_backend.operators.acquisition import AcquisitionModel

BEYOND_SD = 3.0  # a voxel "disagrees" when its residual is beyond this many noise SDs
# A result disagrees with its scan beyond what correct results show (benchmarks/results/studies/
# trust-maps, benchmarks/results/clinical-real): Res-SRDiff's results stay well below the RMS
# level, and a 5% intensity shift of them is above it on every case; a slice profile the job
# does not model (3 thin slices averaged) stays below both. Interpolation is not warned about
# (see consistency_map).
WARNING_RMS_SD = 1.5
WARNING_BEYOND_SHARE = 0.05


@dataclass
class ConsistencyMap:
    residual: Volume  # (acquisition model of the result - acquired) / noise SD, on the input grid
    summary: dict[str, Any]


def consistency_map(result: Volume, acquired: Volume, refinement: Refinement, warn: bool = True) -> ConsistencyMap | None:
    """The map and its summary (RMS and share of head voxels beyond 3 SD, and a warning where
    ``warn`` and the result disagrees); None where the job has no acquisition to hold its result
    against (no refined axis, or all three). Interpolation is not warned about: it draws nothing
    the scan did not show, and its known disagreement is the slice profile it does not undo
    (B-spline's RMS is 1.4-4 SD on the development scans)."""
    model = AcquisitionModel.of(refinement)
    if model is None:
        return None
    measured = acquired.array.astype(np.float64)
    head = head_mask(measured)
    sigma = noise_sd(measured, acquired.grid.spacing, head)
    scale = sigma if sigma > 0 else 1.0
    residual = ((model(result.array) - measured) / scale).astype(np.float32)
    inside = residual[head]
    summary = {
        "model": model_description(model, refinement),
        "noise_sd": round(sigma, 6),
        "noise_sd_from": "Donoho's wavelet MAD of the acquired planes' finest diagonal band, inside the head",
        "rms_sd": round(float(np.sqrt(np.mean(inside.astype(np.float64) ** 2))), 4) if inside.size else None,
        "beyond_3sd_share": round(float(np.mean(np.abs(inside) > BEYOND_SD)), 5) if inside.size else None,
    }
    warning = disagreement(summary) if warn else None
    if warning:
        summary["warning"] = warning
    return ConsistencyMap(Volume(residual, acquired.grid), summary)


def disagreement(summary: dict[str, Any]) -> str | None:
    """The one-line warning for a result that contradicts its scan more than correct results do."""
    rms, share = summary["rms_sd"], summary["beyond_3sd_share"]
    if rms is None or (rms <= WARNING_RMS_SD and share <= WARNING_BEYOND_SHARE):
        return None
    return (f"the result disagrees with the acquired slices: RMS {rms:.2g} noise SD, {100 * share:.2g}% of the head beyond "
            f"{BEYOND_SD:g} SD (correct results stay within {WARNING_RMS_SD:g} SD and {100 * WARNING_BEYOND_SHARE:g}%); "
            "compare it with the input, or use interpolation, where the consistency map is bright")  # fmt: skip


def model_description(model: AcquisitionModel, refinement: Refinement) -> str:
    if model.kind == "thick-slices":
        axis = refinement.axes[0]
        fwhm = refinement.slice_thickness_mm or refinement.source.spacing[axis]
        return f"thick slices along {'xyz'[axis]}: Gaussian profile, FWHM {fwhm:g} mm, every {refinement.source.spacing[axis]:g} mm"
    return f"in-plane: k-space truncation along {', '.join('xyz'[a] for a in refinement.axes)}"
