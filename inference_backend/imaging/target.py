"""The requested output resolution: a per-axis scale factor or a target spacing -> output grid."""
from __future__ import annotations

import math
from dataclasses import dataclass

from inference_backend.errors import InputError
from inference_backend.imaging.validation import check_voxel_count
from inference_backend.imaging.volume import Grid

SPACING_TOLERANCE = 1e-4  # relative: 1.0 vs 0.99999 is no down-sampling


def parse_triplet(text: str, what: str) -> tuple[float, float, float]:
    """``"1,1,4"`` -> (1, 1, 4); a single value applies to all three axes."""
    try:
        values = [float(part) for part in str(text).replace("x", ",").split(",") if part.strip()]
    except ValueError as error:
        raise InputError(f"{what} must be numbers like 1,1,4; got {text!r}") from error
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise InputError(f"{what} must be one or three finite numbers (x,y,z); got {text!r}")
    return (values[0], values[1], values[2])


def target_grid(
    grid: Grid,
    scale: tuple[float, ...] | None = None,
    spacing: tuple[float, ...] | None = None,
    max_voxels: int | None = None,
) -> Grid:
    """Output grid for a scale factor (new spacing = spacing / scale) or a spacing target.

    Super-resolution never coarsens: a scale below 1 is refused, and a spacing target is a
    ceiling: axes the input samples finer than it keep their spacing (1 mm asked of a 0.69 x 0.69
    x 3 mm scan refines only its slices; :func:`kept_axes` says which). A target coarser than the
    input along every axis is refused.
    The grid covers the input's field of view (see :meth:`Grid.with_spacing`); its voxel count
    is checked against the budget (``max_voxels``, see :func:`~inference_backend.imaging.validation.voxel_budget`)
    before the grid exists, since a scale of 1e300 gives sizes no integer holds.
    """
    if (scale is None) == (spacing is None):
        raise InputError("give exactly one of --scale or --spacing")
    if scale is not None:
        if any(s <= 0 for s in scale):
            raise InputError(f"scale factors must be positive; got {_fmt(scale)}")
        if any(s < 1 for s in scale):
            raise InputError(f"scale factors below 1 would down-sample; got {_fmt(scale)} (use values >= 1)")
        spacing = tuple(s / f for s, f in zip(grid.spacing, scale))
    else:
        assert spacing is not None
        if any(s <= 0 for s in spacing):
            raise InputError(f"target spacing must be positive; got {_fmt(spacing)} mm")
        kept = kept_axes(grid, spacing)
        if len(kept) == 3 and finer_than_target(grid, spacing):
            raise InputError(
                f"the input's voxels ({_fmt(grid.spacing)} mm) are already finer than the target {_fmt(spacing)} mm "
                "along every axis; nothing to super-resolve"
            )
        spacing = tuple(old if axis in kept else new for axis, (new, old) in enumerate(zip(spacing, grid.spacing)))
    assert spacing is not None
    # A spacing within tolerance of the input's keeps the input's exactly (no 0.99999 mm grids).
    spacing = tuple(
        old if abs(new - old) <= old * SPACING_TOLERANCE else new for new, old in zip(spacing, grid.spacing)
    )
    check_voxel_count(grid.size_for_spacing(spacing), "the output", max_voxels)
    return grid.with_spacing(spacing)


def finer_than_target(grid: Grid, spacing: tuple[float, ...]) -> tuple[int, ...]:
    """The axes the input samples finer than a spacing target (which keep their spacing)."""
    return tuple(axis for axis, (new, old) in enumerate(zip(spacing, grid.spacing)) if new > old * (1 + SPACING_TOLERANCE))


def kept_axes(grid: Grid, spacing: tuple[float, ...]) -> tuple[int, ...]:
    """The axes a spacing target leaves at the input's spacing: the input samples them finer
    than the target, or as fine (within tolerance)."""
    return tuple(axis for axis, (new, old) in enumerate(zip(spacing, grid.spacing)) if new >= old * (1 - SPACING_TOLERANCE))


def _fmt(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)


def refined_axes(source: Grid, target: Grid) -> tuple[int, ...]:
    """The axes ``target`` samples finer than ``source``: one for a thick-slice scan (its slice
    axis), two for a coarse in-plane matrix."""
    return tuple(axis for axis, (new, old) in enumerate(zip(target.spacing, source.spacing)) if new < old * (1 - SPACING_TOLERANCE))


def acquisition_of(axes: tuple[int, ...]) -> str:
    """The acquisition a job's refined axes say the input has: ``thick-slices`` (one axis, its
    slice axis), ``in-plane`` (two: a coarse acquisition matrix) or ``other`` (none, or all
    three). Thin slices with gaps (imputation) refine one axis too: geometry cannot tell them
    from thick slices, so only a method named for them treats an input as such."""
    return {1: "thick-slices", 2: "in-plane"}.get(len(axes), "other")


@dataclass(frozen=True)
class Refinement:
    """What a job refines: the input's grid, the output's, the axes that get finer and the
    thick slices' thickness where it differs from their spacing (None: equal)."""

    source: Grid
    target: Grid
    slice_thickness_mm: float | None = None

    @property
    def axes(self) -> tuple[int, ...]:
        return refined_axes(self.source, self.target)

    @property
    def acquisition(self) -> str:
        return acquisition_of(self.axes)

    @property
    def factors(self) -> tuple[float, float, float]:
        """Per axis, the input's spacing over the output's."""
        return tuple(float(s / t) for s, t in zip(self.source.spacing, self.target.spacing))  # type: ignore[return-value]

    def relative_thickness(self) -> tuple[float, float, float]:
        """Per axis, the slice thickness over the slice spacing that the thick-slice forward
        models use: 1 (slices as thick as their spacing) except along the one refined axis when
        the thickness is known (below 1: a gap between the slices; above: overlapping slices)."""
        ratios = [1.0, 1.0, 1.0]
        axes = self.axes
        if self.slice_thickness_mm is not None and len(axes) == 1:
            ratios[axes[0]] = self.slice_thickness_mm / self.source.spacing[axes[0]]
        return (ratios[0], ratios[1], ratios[2])
