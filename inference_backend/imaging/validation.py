"""The checks a volume passes before any voxel is processed: one scalar 3D volume, a usable
grid, a size within the voxel budget, intensities a float32 method can work on.

Every rejection is an :class:`~inference_backend.errors.InputError` (a budget exceeded: a
:class:`~inference_backend.errors.ResourceError`) naming the file and the problem.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from inference_backend.errors import InputError, ResourceError
from inference_backend.imaging.volume import Grid, Volume, fmt_values

SUPPORTED_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr")
DEFAULT_MAX_VOXELS = 2**28  # ~268 M voxels: ~1 GiB per float32 copy; a job holds a few copies
MAX_INTENSITY = 1e18  # methods compute in float32 (max 3.4e38); variance maps square the intensities
MAX_ORIGIN_MM = 1e4  # 10 m from the scanner's isocentre: beyond, an origin is no position (and float32 NIfTI loses the mm)
SINGULAR_DIRECTION = 1e-6  # |determinant| of the unit-column direction matrix below which no 3D orientation is defined


def voxel_budget(requested: int | None = None) -> int:
    """The most voxels a volume of a job may have: ``requested`` (--max-voxels), else the
    environment's ``MRISR_MAX_VOXELS``, else 2^28; at least 1."""
    if requested is not None:
        source, value = "--max-voxels", requested
    else:
        source, value = "MRISR_MAX_VOXELS", os.environ.get("MRISR_MAX_VOXELS", DEFAULT_MAX_VOXELS)
    try:
        budget = int(float(value))
    except (ValueError, OverflowError) as error:
        raise InputError(f"{source} must be a number of voxels; got {value!r}") from error
    if budget < 1:
        raise InputError(f"{source} must be at least 1 voxel; got {value}")
    return budget


def check_voxel_budget(grid: Grid, what: str, budget: int | None = None) -> None:
    check_voxel_count(grid.size, what, budget)


def check_voxel_count(size: Sequence[float], what: str, budget: int | None = None) -> None:
    """Refuse a volume of ``size`` voxels above the budget. The size may be floats: a requested
    output (a scale of 1e300) can be too large for any integer, and is refused all the same."""
    budget = voxel_budget(budget)
    count = math.prod(float(n) for n in size)
    if count > budget:
        raise ResourceError(
            f"{what} would have {_number(count, ',')} voxels ({'x'.join(_number(n) for n in size)}), above the "
            f"budget of {budget:,}; choose a coarser target or raise --max-voxels / MRISR_MAX_VOXELS"
        )


def _number(value: float, grouping: str = "") -> str:
    """An integer as digits, or as 1.2e+301 where the digits would fill the screen."""
    return f"{value:{grouping}.0f}" if value < 1e15 else f"{value:.3g}"


def check_header(where: object, dimension: int, size: Sequence[int], components: int, complex_voxels: bool) -> None:
    """Refuse what is not one scalar 3D volume: 2D, a time series, complex, RGB/vector, a single slice."""
    if dimension == 4 and size[3] == 1:
        dimension, size = 3, size[:3]
    if dimension != 3:
        kind = "a 2D image" if dimension == 2 else f"{dimension}D (a time series?)"
        raise InputError(f"{where}: is {kind} of size {'x'.join(map(str, size))}; a single 3D volume is required")
    if complex_voxels:
        raise InputError(f"{where}: has complex voxels; a real-valued magnitude image is required")
    if components != 1:
        raise InputError(
            f"{where}: has {components} components per voxel (RGB or vector image); a scalar (grey-level) volume is required"
        )
    if min(size) < 2:
        raise InputError(
            f"{where}: is a single slice ({'x'.join(map(str, size))}); a 3D volume with at least 2 voxels per axis is required"
        )


def check_geometry(where: object, spacing: Sequence[float], direction: Sequence[float], origin: Sequence[float]) -> None:
    """Refuse a voxel size, an orientation or a position that defines no 3D grid, saying which."""
    bad = [axis for axis, value in zip("xyz", spacing) if not (math.isfinite(value) and value > 0)]
    if bad:
        raise InputError(
            f"{where}: the voxel spacing {fmt_values(spacing)} mm is zero, negative or not a number along "
            f"{', '.join(bad)}; the header gives no usable voxel size"
        )
    if not all(math.isfinite(value) and abs(value) <= MAX_ORIGIN_MM for value in origin):
        raise InputError(
            f"{where}: the origin {fmt_values(origin)} mm is not a number or lies beyond {MAX_ORIGIN_MM:g} mm; "
            "the header gives no usable position"
        )
    matrix = np.asarray(direction, dtype=float).reshape(3, 3)
    if not np.all(np.isfinite(matrix)):
        why = "it holds entries that are not numbers"
    elif abs(np.linalg.det(matrix)) < SINGULAR_DIRECTION:
        unit = matrix / np.linalg.norm(matrix, axis=0)
        pairs = [f"{'ijk'[a]} and {'ijk'[b]}" for a, b in ((0, 1), (0, 2), (1, 2)) if abs(unit[:, a] @ unit[:, b]) > 1 - 1e-6]
        why = f"its {pairs[0]} axes are parallel" if pairs else "its three axes lie in one plane"
    else:
        return
    raise InputError(
        f"{where}: the direction matrix {fmt_values(matrix.ravel())} is singular ({why}); the header defines no 3D orientation"
    )


def validate_intensities(volume: Volume, name: str) -> None:
    """Reject volumes a method cannot work on: non-finite, all-constant, or beyond what float32
    arithmetic holds (refused, never rescaled: intensities are the user's data)."""
    array = volume.array
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise InputError(f"{name}: contains {bad:,} NaN/Inf voxels; fix or mask them before super-resolution")
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if low == high:
        value = array.flat[0] if array.size else "nothing"
        raise InputError(f"{name}: is empty (every voxel is {value}); there is no image to super-resolve")
    peak = max(abs(low), abs(high))
    if peak > MAX_INTENSITY:
        raise InputError(
            f"{name}: intensities reach {peak:.3g}, beyond +-{MAX_INTENSITY:.0e}, where float32 results and "
            "variance maps overflow; rescale the image first (mrisr does not rescale intensities itself)"
        )


def check_path_text(path: object, what: str = "") -> None:
    """Refuse a path that is not UTF-8 text (bytes Python carries as surrogates): ITK's C++
    aborts the process on one, and no message could print it."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")
        raise InputError(f"{what or 'the path'} {shown!r} holds bytes that are not UTF-8 text; rename it") from None
