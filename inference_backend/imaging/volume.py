"""The volume type: a voxel array with the exact geometry of its sampling grid.

Conventions (the same as ITK and DICOM, so SimpleITK reads and writes them unchanged):

* ``array[i, j, k]`` is indexed in IJK order (i fastest in the file), like nibabel and
  Slicer's IJK, i.e. the transpose of ``SimpleITK.GetArrayFromImage``.
* Physical coordinates are **LPS** millimetres. ``origin`` is the centre of voxel (0, 0, 0);
  ``direction`` holds the unit vectors of the i, j, k axes as its *columns*;
  ``spacing`` is the centre-to-centre distance along i, j, k.
  ``physical = origin + direction @ (spacing * ijk)``.
* Slicer works in RAS: :meth:`Grid.ijk_to_ras` and :meth:`Grid.from_ijk_to_ras` convert
  (RAS = diag(-1, -1, 1) LPS).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Grid:
    """Sampling grid of a 3D volume (see the module docstring for conventions)."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 values, row-major 3x3, columns are the IJK axes in LPS

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(int(n) for n in self.size))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))
        object.__setattr__(self, "direction", tuple(float(d) for d in np.ravel(self.direction)))
        if len(self.size) != 3 or len(self.spacing) != 3 or len(self.origin) != 3:
            raise ValueError("a Grid is three-dimensional")
        if len(self.direction) != 9:
            raise ValueError("direction must be a 3x3 matrix")
        if min(self.spacing) <= 0:
            raise ValueError(f"spacing must be positive, got {self.spacing}")

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def num_voxels(self) -> int:
        return int(np.prod(self.size, dtype=np.int64))

    def ijk_to_lps(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping voxel indices to LPS millimetres."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.direction_matrix @ np.diag(self.spacing)
        matrix[:3, 3] = self.origin
        return matrix

    def ijk_to_ras(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping voxel indices to RAS millimetres (Slicer's IJKToRAS)."""
        matrix = self.ijk_to_lps()
        matrix[:3] = LPS_TO_RAS @ matrix[:3]
        return matrix

    @classmethod
    def from_ijk_to_ras(cls, matrix: np.ndarray, size: tuple[int, int, int]) -> "Grid":
        """Grid from Slicer's IJKToRAS matrix (spacing = column norms)."""
        lps = LPS_TO_RAS @ np.asarray(matrix, dtype=float)[:3]
        axes = lps[:, :3]
        spacing = np.linalg.norm(axes, axis=0)
        return cls(size=size, spacing=spacing, origin=lps[:, 3], direction=axes / spacing)

    def index_to_physical(self, ijk: np.ndarray) -> np.ndarray:
        """LPS position of (possibly fractional) voxel indices; ``ijk`` has shape (..., 3)."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ (self.direction_matrix @ np.diag(self.spacing)).T + np.asarray(self.origin)

    def center(self) -> np.ndarray:
        """LPS position of the centre of the field of view."""
        return self.index_to_physical((np.asarray(self.size) - 1) / 2.0)

    def with_spacing(self, spacing: tuple[float, float, float]) -> "Grid":
        """The grid with the given spacing over the same field of view, centred on the same point.

        Along each axis the new size is ``round(n * s / t)`` (n voxels of spacing s, target t).
        For an integer factor r (t = s / r) the new voxels tile each old voxel exactly: the r
        new centres of old voxel c lie at c + (q + 0.5) / r - 0.5, q = 0..r-1 (old-index units),
        which is where the thin slices of a thick-slice acquisition are.
        """
        spacing = np.asarray(spacing, dtype=float)
        size = self.size_for_spacing(spacing).astype(int)
        half_span = (size - 1) / 2.0 * spacing
        origin = self.center() - self.direction_matrix @ half_span
        return Grid(size=tuple(size), spacing=tuple(spacing), origin=tuple(origin), direction=self.direction)

    def size_for_spacing(self, spacing: tuple[float, ...] | np.ndarray) -> np.ndarray:
        """The voxel counts of :meth:`with_spacing` as floats: a size too large for an integer
        (a scale of 1e300) can be checked against the voxel budget before any array exists."""
        extent = np.asarray(self.size) * np.asarray(self.spacing)
        return np.maximum(1.0, np.rint(extent / np.asarray(spacing, dtype=float)))

    def corners(self) -> np.ndarray:
        """IJK indices of the eight corner voxels, shape (8, 3)."""
        return np.array(np.meshgrid(*[[0, n - 1] for n in self.size], indexing="ij")).reshape(3, -1).T

    def corner_distance_mm(self, other: "Grid") -> float:
        """The largest distance between the corner voxel centres of two grids of the same size."""
        corners = self.corners()
        return float(np.linalg.norm(self.index_to_physical(corners) - other.index_to_physical(corners), axis=1).max())

    def matches(self, other: "Grid", tolerance_mm: float = 1e-3) -> bool:
        """Same size, and the same voxel centres up to ``tolerance_mm`` (corners checked)."""
        return self.size == other.size and self.corner_distance_mm(other) <= tolerance_mm

    def mismatch(self, other: "Grid") -> str:
        """What differs from ``other``, for messages: each differing property as ``this vs other``,
        and how far apart the voxel centres lie (a flipped axis changes the direction only)."""
        properties = [
            ("size", self.size, other.size, 0),
            ("spacing", self.spacing, other.spacing, 1e-6),
            ("origin", self.origin, other.origin, 1e-3),
            ("direction", self.direction, other.direction, 1e-6),
        ]
        parts = [
            f"{name} {fmt_values(mine)} vs {fmt_values(theirs)}"
            for name, mine, theirs, tolerance in properties
            if not np.allclose(mine, theirs, rtol=0, atol=tolerance)
        ]
        if self.size == other.size:
            parts.append(f"voxel centres up to {self.corner_distance_mm(other):.3g} mm apart")
        return "; ".join(parts)

    def shear_mm(self) -> float:
        """How far the farthest voxel centre moves when the direction matrix is replaced by the
        nearest orthogonal one, as formats that store only rotations (NIfTI) do: 0 unless sheared."""
        u, _, vt = np.linalg.svd(self.direction_matrix)
        rotated = Grid(self.size, self.spacing, self.origin, u @ vt)
        return self.corner_distance_mm(rotated)

    def describe(self) -> dict:
        """JSON-ready description, for reports."""
        return {
            "size": list(self.size),
            "spacing_mm": list(self.spacing),
            "origin_lps_mm": list(self.origin),
            "direction_lps": [list(row) for row in self.direction_matrix],
        }

    @classmethod
    def from_description(cls, description: dict) -> "Grid":
        """The grid a report described (:meth:`describe`)."""
        return cls(description["size"], description["spacing_mm"], description["origin_lps_mm"], np.ravel(description["direction_lps"]))


@dataclass
class Volume:
    """A scalar 3D image: ``array`` (IJK order) on ``grid``; ``slice_thickness`` (mm) of the
    slices stacked along k where the file records it (DICOM (0018,0050)), else None;
    ``provenance``: what the reader says of the file for reports (``geometry``: which header
    field placed the voxels; ``warnings``: what the user should know)."""

    array: np.ndarray
    grid: Grid
    slice_thickness: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.ndim != 3 or tuple(self.array.shape) != self.grid.size:
            raise ValueError(f"array shape {self.array.shape} does not match grid size {self.grid.size}")

    def with_array(self, array: np.ndarray) -> "Volume":
        """A new volume on the same grid (the array is not copied)."""
        return Volume(array=array, grid=self.grid, slice_thickness=self.slice_thickness, provenance=self.provenance)

    def crop(self, start: tuple[int, int, int], stop: tuple[int, int, int]) -> "Volume":
        """The sub-volume ``[start, stop)`` with its exact grid (the voxels do not move)."""
        box = tuple(slice(a, b) for a, b in zip(start, stop))
        array = np.ascontiguousarray(self.array[box])
        origin = self.grid.index_to_physical(np.asarray(start, dtype=float))
        return Volume(array, Grid(array.shape, self.grid.spacing, origin, self.grid.direction), self.slice_thickness, self.provenance)


def fmt_values(values: tuple[float, ...]) -> str:
    """Numbers for messages: ``(0.9, 1.1, 3)``."""
    return "(" + ", ".join(f"{v + 0.0:.4g}" for v in values) + ")"  # + 0.0: no "-0"
