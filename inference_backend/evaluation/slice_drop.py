"""Truth from a real thick-slice scan, which has no 1 mm truth: the slices it acquired.

**Slice-drop**: keep every ``factor``-th acquired slice (3 mm slices every 6 mm for factor 2),
super-resolve them onto a grid about 1 mm fine along the slice axis (the regime a user runs and
the methods are made for), average the result over each acquired slice's slab with the
acquisition's profile (the consistency map's acquisition model: a Gaussian of FWHM the slice
thickness) and compare it, at every removed slice, with the slice the scanner measured there.
Scores are taken on the removed slices only (PSNR over their head voxels; SSIM per slice,
averaged).

**Two visits**: a patient scanned twice. The two results, rigidly registered, should agree
with each other at least as well as the two B-spline ones outside what changed between the
visits (new or shrinking lesions), approximated by the voxels where the B-spline pair differs
most. A smoother pair agrees more whether or not it is right, so the visits are also held
against real measurements: each visit's result, moved onto the other visit, averaged over that
visit's slabs (whose positions differ from its own) and compared with the slices that visit
acquired. What a result draws between its own slices is scored there against what a scanner
measured, at the acquired resolution, where no method gains from being smooth. Nothing is left
out there: what changed between the visits weighs on every method alike, and a region chosen
from the methods' own errors would score each against the others.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from inference_backend.evaluation.metrics import psnr, ssim
from inference_backend.imaging.head import head_mask
from inference_backend.imaging.target import Refinement, target_grid
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.operators.acquisition import AcquisitionModel

if TYPE_CHECKING:
    import SimpleITK as sitk

FINE_MM = 1.0  # the results are made this fine (about) along the slice axis, then averaged over the slabs
CHANGED_SHARE = 0.02  # the share of head voxels the agreement of a pair takes as changed between visits (largest B-spline differences)


@dataclass(frozen=True)
class SliceDrop:
    acquired: Volume
    kept: Volume  # every factor-th slice, on its own grid
    factor: int
    axis: int  # the slice axis (the coarsest)

    @property
    def removed(self) -> np.ndarray:
        """The indices of the removed slices along the slice axis."""
        return np.array([i for i in range(self.acquired.grid.size[self.axis]) if i % self.factor])

    @property
    def thickness_mm(self) -> float:
        """The acquired slices' thickness: their spacing (a NIfTI file records no other)."""
        return self.acquired.grid.spacing[self.axis]

    @property
    def target(self) -> Grid:
        """The grid the methods super-resolve the kept slices onto: about FINE_MM along the slice
        axis, a whole number of voxels per kept slice, the other axes as acquired."""
        steps = max(self.factor, round(self.kept.grid.spacing[self.axis] / FINE_MM))
        return target_grid(self.kept.grid, scale=tuple(float(steps) if a == self.axis else 1.0 for a in range(3)))

    def as_acquired(self, result: Volume) -> np.ndarray:
        """``result`` (on :attr:`target`) averaged over every acquired slice's slab."""
        return AcquisitionModel.of(Refinement(self.acquired.grid, result.grid))(result.array)


def slice_drop(acquired: Volume, factor: int) -> SliceDrop:
    """Every ``factor``-th slice of ``acquired`` along its coarsest axis, starting with the first."""
    axis = int(np.argmax(acquired.grid.spacing))
    kept = np.take(acquired.array, np.arange(0, acquired.grid.size[axis], factor), axis=axis)
    spacing = tuple(s * factor if a == axis else s for a, s in enumerate(acquired.grid.spacing))
    grid = Grid(kept.shape, spacing, acquired.grid.origin, acquired.grid.direction)
    return SliceDrop(acquired, Volume(np.ascontiguousarray(kept), grid), factor, axis)


def slice_drop_scores(drop: SliceDrop, result: Volume) -> dict[str, float]:
    """PSNR and SSIM of ``result`` (on ``drop.target``), as the scanner would have acquired it, at
    the removed slices, in the head."""
    reference = drop.acquired.array.astype(np.float32)
    estimate = drop.as_acquired(result).astype(np.float32)
    head = head_mask(reference)
    removed = np.zeros(reference.shape, bool)
    index = [slice(None)] * 3
    index[drop.axis] = drop.removed
    removed[tuple(index)] = True
    planes = []
    for i in drop.removed:
        plane = [slice(None)] * 3
        plane[drop.axis] = i
        mask = head[tuple(plane)]
        if mask.sum() > 100:
            planes.append((ssim(reference[tuple(plane)], estimate[tuple(plane)], mask), mask.sum()))
    weights = np.array([w for _, w in planes], dtype=float)
    return {
        "psnr": round(psnr(reference, estimate, head & removed), 4),
        "ssim": round(float(np.dot([s for s, _ in planes], weights) / weights.sum()), 5),
        "slices_scored": len(planes),
    }


def two_visit_agreement(
    first: Volume, second: Volume, first_bspline: Volume, second_bspline: Volume, transform: sitk.Transform
) -> dict[str, float]:
    """How well each pair agrees with ``second`` moved onto ``first`` by ``transform`` (found on
    the B-spline pair: :func:`rigid_transform`), outside what changed: PSNR and SSIM of the
    result pair and of the B-spline pair."""
    moved = {"result": resampled(second, first.grid, transform), "bspline": resampled(second_bspline, first.grid, transform)}
    head = head_mask(first_bspline.array.astype(np.float32)) & (moved["bspline"] > 0)
    difference = np.abs(first_bspline.array - moved["bspline"])
    changed = difference > np.quantile(difference[head], 1 - CHANGED_SHARE)
    region = head & ~changed
    scores = {}
    for key, pair in (("result", (first.array, moved["result"])), ("bspline", (first_bspline.array, moved["bspline"]))):
        scores[f"{key}_psnr"] = round(psnr(pair[0], pair[1], region), 4)
        scores[f"{key}_ssim"] = round(ssim(pair[0], pair[1], region), 5)
    return scores


def cross_visit_prediction(acquired: Volume, fine: Grid, others: dict[str, Volume], transform: sitk.Transform) -> dict[str, float]:
    """How well each of ``others`` (the other visit's results on one grid, by name) predicts the
    slices ``acquired`` holds: moved onto ``fine`` (a grid of this visit's results) by ``transform``,
    averaged over this visit's slabs, its intensities matched by a least-squares line (the
    visits' scanner gains differ), PSNR in the head and in both fields of view."""
    model = AcquisitionModel.of(Refinement(acquired.grid, fine))
    measured = acquired.array.astype(np.float64)
    their_grid = next(iter(others.values())).grid
    in_view = model(resampled(Volume(np.ones(their_grid.size, np.float32), their_grid), fine, transform, "linear")) > 0.999
    region = head_mask(measured) & in_view
    scores = {}
    for name, volume in others.items():
        predicted = model(resampled(volume, fine, transform))
        slope, offset = np.polyfit(predicted[region], measured[region], 1)
        scores[name] = round(psnr(measured, slope * predicted + offset, region), 4)
    return scores


def two_visit_prediction(
    acquired: tuple[Volume, Volume], results: tuple[dict[str, Volume], dict[str, Volume]], transform: sitk.Transform
) -> dict[str, float]:
    """:func:`cross_visit_prediction` both ways, averaged per result name: the second visit's
    results predicting the first visit's slices through ``transform`` (the first's points into
    the second's: :func:`rigid_transform`), and the first's predicting the second's through its
    inverse."""
    into_first = cross_visit_prediction(acquired[0], next(iter(results[0].values())).grid, results[1], transform)
    into_second = cross_visit_prediction(acquired[1], next(iter(results[1].values())).grid, results[0], transform.GetInverse())
    return {name: round((into_first[name] + into_second[name]) / 2, 4) for name in into_first}


def rigid_transform(fixed: Volume, moving: Volume) -> sitk.Transform:
    """The rigid transform taking ``fixed``'s points into ``moving``, the same every run."""
    import SimpleITK as sitk

    from inference_backend.evaluation.registration import register

    return register(fixed, moving, sitk.Euler3DTransform(), histogram_bins=50)


def resampled(volume: Volume, grid: Grid, transform: sitk.Transform, interpolator: Literal["bspline", "linear"] = "bspline") -> np.ndarray:
    """``volume`` on ``grid`` through ``transform`` (0 outside its field of view)."""
    import SimpleITK as sitk

    from inference_backend.imaging.itk import from_sitk, to_sitk

    reference = to_sitk(Volume(np.zeros(grid.size, np.float32), grid))
    interpolation = {"bspline": sitk.sitkBSpline, "linear": sitk.sitkLinear}[interpolator]
    return from_sitk(sitk.Resample(to_sitk(volume, np.float32), reference, transform, interpolation, 0.0, sitk.sitkFloat32)).array
