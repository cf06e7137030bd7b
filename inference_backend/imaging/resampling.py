"""Classical interpolation onto a target grid (SimpleITK), the baseline every method must beat.

It is also how every learned method builds its conditioning image: the LR volume up-sampled
onto the HR grid.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import SimpleITK as sitk

from inference_backend.errors import Cancelled
from inference_backend.imaging.itk import from_sitk, to_sitk
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.progress import Progress

INTERPOLATORS = {
    "nearest": sitk.sitkNearestNeighbor,
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,  # cubic B-spline interpolation (with the B-spline prefilter)
    "lanczos": sitk.sitkLanczosWindowedSinc,  # windowed sinc, Lanczos window, radius 3
}


def resample(volume: Volume, grid: Grid, kind: str = "bspline", progress: Progress | None = None) -> Volume:
    """Interpolate ``volume`` onto ``grid`` (float32 result).

    Output voxels up to half an input voxel outside the input's outermost voxel centres (the
    edge-aligned grids of :meth:`Grid.with_spacing`) take the nearest edge value rather than 0.
    """
    source = _padded_by_edge(to_sitk(volume, np.float32))
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize(grid.size)
    resampler.SetOutputSpacing(grid.spacing)
    resampler.SetOutputOrigin(grid.origin)
    resampler.SetOutputDirection(grid.direction)
    resampler.SetInterpolator(INTERPOLATORS[kind])
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    resampler.SetDefaultPixelValue(0.0)
    if progress is not None:

        def on_progress() -> None:  # an exception must not leave this callback: ITK would print it
            try:
                progress.report(resampler.GetProgress(), f"{kind} interpolation")
            except Cancelled:
                resampler.Abort()

        resampler.AddCommand(sitk.sitkProgressEvent, on_progress)
    try:
        result = resampler.Execute(source)
    except RuntimeError as error:
        if progress is not None and progress.cancelled:
            raise Cancelled() from error
        raise
    if progress is not None:
        progress.report(1.0, f"{kind} interpolation")
    return from_sitk(result)


def _padded_by_edge(image: sitk.Image, pad: int = 2) -> sitk.Image:
    """Replicate the border so interpolation near the FOV edge sees data, not zeros."""
    return sitk.ZeroFluxNeumannPad(image, [pad] * 3, [pad] * 3)


@lru_cache(maxsize=256)
def bspline_upsampling_matrix(n_low: int, factor: int) -> np.ndarray:
    """The ``(n_low * factor) x n_low`` matrix of :func:`resample`'s B-spline along one axis.

    Training pairs are up-sampled with exactly what inference uses: resampling is separable,
    so resampling a stack of unit impulses along one axis gives the operator's columns.
    """
    impulses = np.repeat(np.eye(n_low, dtype=np.float32)[:, :, None], 2, axis=2)
    coarse = Grid((n_low, n_low, 2), (float(factor), 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    fine = coarse.with_spacing((1.0, 1.0, 1.0))
    return resample(Volume(impulses, coarse), fine, "bspline").array[:, :, 0].astype(np.float64)
