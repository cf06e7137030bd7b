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

from dataclasses import dataclass

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
        extent = np.asarray(self.size) * np.asarray(self.spacing)
        size = np.maximum(1, np.rint(extent / spacing)).astype(int)
        half_span = (size - 1) / 2.0 * spacing
        origin = self.center() - self.direction_matrix @ half_span
        return Grid(size=tuple(size), spacing=tuple(spacing), origin=tuple(origin), direction=self.direction)

    def matches(self, other: "Grid", tolerance_mm: float = 1e-3) -> bool:
        """Same size, and the same voxel centres up to ``tolerance_mm`` (corners checked)."""
        if self.size != other.size:
            return False
        corners = np.array(np.meshgrid(*[[0, n - 1] for n in self.size], indexing="ij")).reshape(3, -1).T
        distance = np.abs(self.index_to_physical(corners) - other.index_to_physical(corners))
        return bool(distance.max() <= tolerance_mm)

    def describe(self) -> dict:
        """JSON-ready description, for reports."""
        return {
            "size": list(self.size),
            "spacing_mm": list(self.spacing),
            "origin_lps_mm": list(self.origin),
            "direction_lps": [list(row) for row in self.direction_matrix],
        }


@dataclass
class Volume:
    """A scalar 3D image: ``array`` (IJK order) on ``grid``."""

    array: np.ndarray
    grid: Grid

    def __post_init__(self) -> None:
        if self.array.ndim != 3 or tuple(self.array.shape) != self.grid.size:
            raise ValueError(f"array shape {self.array.shape} does not match grid size {self.grid.size}")

    def with_array(self, array: np.ndarray) -> "Volume":
        """A new volume on the same grid (the array is not copied)."""
        return Volume(array=array, grid=self.grid)

    def crop(self, start: tuple[int, int, int], stop: tuple[int, int, int]) -> "Volume":
        """The sub-volume ``[start, stop)`` with its exact grid (the voxels do not move)."""
        box = tuple(slice(a, b) for a, b in zip(start, stop))
        array = np.ascontiguousarray(self.array[box])
        origin = self.grid.index_to_physical(np.asarray(start, dtype=float))
        return Volume(array, Grid(array.shape, self.grid.spacing, origin, self.grid.direction))
