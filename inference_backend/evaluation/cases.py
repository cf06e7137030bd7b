"""Evaluation cases: a high-resolution reference, its simulated acquisition, and the factors
that bring the acquisition back onto the reference grid exactly."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from inference_backend.evaluation.lesion_fidelity import LesionTruth
from inference_backend.evaluation.metrics import image_metrics
from inference_backend.imaging.head import head_mask
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.operators.degradation import (
    AxisOperator,
    SeparableOperator,
    crop_to_multiple,
    kspace_truncation_matrix,
    lr_grid,
    slice_profile_matrix,
)


@dataclass
class Case:
    name: str
    description: str
    reference: Volume  # HR, cropped so each axis is a multiple of its factor
    degraded: Volume  # the simulated low-resolution acquisition, on its exact grid
    factors: tuple[int, int, int]  # --scale that maps `degraded` onto `reference.grid`
    coarse_axes: tuple[int, ...]
    explicit_target: bool = False  # the output grid is `reference.grid` itself (not reachable by --scale)
    acquisition: str = "thick-slices"  # one of inference_backend.registry.ACQUISITIONS
    brain_mask: np.ndarray | None = None  # on the reference grid: the template's, or an atlas fit's
    slice_thickness: float | None = None  # mm, where the slices are thinner than their spacing (a gap)
    lesions: LesionTruth | None = None  # on the reference grid: where the lesions are (lesion fidelity scores)

    @cached_property
    def mask(self) -> np.ndarray:
        return head_mask(self.reference.array)

    def score(self, estimate: np.ndarray) -> dict[str, float]:
        """PSNR / SSIM / GMSD of an estimate on the reference grid, inside the head mask (and,
        suffixed ``_brain``, inside the brain mask when the case has one)."""
        scores = image_metrics(self.reference.array, estimate, self.mask)
        if self.brain_mask is not None:
            scores |= {f"{k}_brain": v for k, v in image_metrics(self.reference.array, estimate, self.brain_mask).items()}
        return scores


def degrade(reference: Volume, operator: SeparableOperator, factors: tuple[int, int, int]) -> Volume:
    """Apply a separable forward model to a volume; the result carries the LR grid."""
    array = operator(torch.from_numpy(reference.array.astype(np.float64))).float().numpy()
    return Volume(np.ascontiguousarray(array), lr_grid(reference.grid, factors))


def through_plane_case(
    name: str, volume: Volume, factor: int, axis: int = 2, profile: str = "gaussian", thickness_mm: float | None = None
) -> Case:
    """Thick slices along ``axis`` (a 2D multi-slice scan): slice profile of FWHM = spacing, or
    ``thickness_mm`` when thinner (a gap between the slices, as clinical T2/FLAIR often have)."""
    factors = tuple(factor if a == axis else 1 for a in range(3))
    reference = crop_to_multiple(volume, factors)
    hr_spacing = reference.grid.spacing[axis]
    fwhm = None if thickness_mm is None else thickness_mm / hr_spacing
    matrix = slice_profile_matrix(reference.grid.size[axis], factor, profile, fwhm)
    degraded = degrade(reference, SeparableOperator([AxisOperator(axis, matrix)], ndim=3), factors)
    spacing = hr_spacing * factor
    thickness = spacing if thickness_mm is None else thickness_mm
    every = "" if thickness_mm is None else f" every {spacing:g} mm"
    return Case(
        name,
        f"through-plane x{factor}: {thickness:g} mm {profile} slices{every} along {'xyz'[axis]}",
        reference,
        degraded,
        factors,
        (axis,),
        slice_thickness=thickness_mm,
    )


def in_plane_case(name: str, volume: Volume, factor: int, slice_axis: int = 2) -> Case:
    """k-space truncation by ``factor`` along both in-plane axes (a coarser acquisition matrix)."""
    axes = tuple(a for a in range(3) if a != slice_axis)
    factors = tuple(factor if a in axes else 1 for a in range(3))
    reference = crop_to_multiple(volume, factors)
    operators = [AxisOperator(a, kspace_truncation_matrix(reference.grid.size[a], factor)) for a in axes]
    degraded = degrade(reference, SeparableOperator(operators, ndim=3), factors)
    description = f"in-plane x{factor}: k-space truncation in {'xyz'[axes[0]]}{'xyz'[axes[1]]}"
    return Case(name, description, reference, degraded, factors, axes, acquisition="in-plane")


def slice_masking_case(name: str, volume: Volume, keep_every: int = 4, axis: int = 2, offset: int = 1) -> Case:
    """Slice imputation (InverseSR's setting): only every ``keep_every``-th HR slice is acquired
    (thin slices with gaps). The acquired slices lie on HR slices, so the output grid is the
    reference grid itself, half a voxel away from the one ``--scale`` would give."""
    factors = tuple(keep_every if a == axis else 1 for a in range(3))
    reference = crop_to_multiple(volume, factors)
    kept = [slice(None)] * 3
    kept[axis] = slice(offset, None, keep_every)
    first = np.zeros(3)
    first[axis] = offset
    grid = reference.grid
    degraded_grid = Grid(
        tuple(n // f for n, f in zip(grid.size, factors)),
        tuple(s * f for s, f in zip(grid.spacing, factors)),
        tuple(grid.index_to_physical(first)),
        grid.direction,
    )
    degraded = Volume(np.ascontiguousarray(reference.array[tuple(kept)]), degraded_grid)
    spacing = grid.spacing[axis] * keep_every
    return Case(
        name,
        f"slice imputation: 1 of every {keep_every} slices along {'xyz'[axis]} acquired ({spacing:g} mm apart)",
        reference,
        degraded,
        factors,
        (axis,),
        explicit_target=True,
        acquisition="imputation",
    )


SPEED_SIZES = {"head": (181, 217, 181), "half": (128, 128, 128)}  # the speed table's output sizes


def mni_crop(size: tuple[int, int, int]) -> Volume:
    """The central ``size`` crop of the MNI152 template."""
    from inference_backend.data.datasets import load_mni152

    mni = load_mni152()
    start = tuple((n - s) // 2 for n, s in zip(mni.grid.size, size))
    return mni.crop(start, tuple(a + s for a, s in zip(start, size)))


def speed_case(size: tuple[int, int, int] = SPEED_SIZES["head"]) -> Case:
    """The MNI152 head cropped to ``size``, degraded to 4 mm slices along z (the speed table's case)."""
    return through_plane_case("speed", mni_crop(size), factor=4)
