"""Reading and writing volumes (NIfTI, NRRD) through SimpleITK, with input validation.

Every rejection is an :class:`~inference_backend.errors.InputError` naming the file and the
problem, raised before any pixel is processed; the header is checked before pixels load.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from inference_backend.errors import InputError, ResourceError
from inference_backend.volume import Grid, Volume

SUPPORTED_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr")
DEFAULT_MAX_VOXELS = 2**28  # ~268 M voxels: ~1 GiB per float32 copy; a job holds a few copies


def max_voxels() -> int:
    """The voxel budget for any volume a job reads or creates (env ``MRISR_MAX_VOXELS``)."""
    value = os.environ.get("MRISR_MAX_VOXELS")
    if value is None:
        return DEFAULT_MAX_VOXELS
    try:
        return int(float(value))
    except ValueError as error:
        raise InputError(f"MRISR_MAX_VOXELS must be a number, got {value!r}") from error


def check_voxel_budget(grid: Grid, what: str, budget: int | None = None) -> None:
    budget = max_voxels() if budget is None else budget
    if grid.num_voxels > budget:
        raise ResourceError(
            f"{what} would have {grid.num_voxels:,} voxels ({'x'.join(map(str, grid.size))}), above the "
            f"budget of {budget:,}; choose a coarser target or raise --max-voxels / MRISR_MAX_VOXELS"
        )


def volume_stem(path: str | os.PathLike) -> str:
    """File name without its image suffix: ``sub-01_T1w.nii.gz`` -> ``sub-01_T1w``."""
    name = Path(path).name
    for suffix in SUPPORTED_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _check_suffix(path: Path) -> None:
    if not path.name.lower().endswith(SUPPORTED_SUFFIXES):
        raise InputError(f"{path}: unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}")


def _grid_from_image(image: sitk.Image) -> Grid:
    return Grid(
        size=image.GetSize(), spacing=image.GetSpacing(), origin=image.GetOrigin(), direction=image.GetDirection()
    )


def _read_header(path: Path) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise InputError(f"{path}: cannot be read as a NIfTI or NRRD image (corrupt or truncated file?)") from error
    return reader


def _check_header(path: Path, reader: sitk.ImageFileReader) -> None:
    size = reader.GetSize()
    if reader.GetDimension() == 4 and size[3] == 1:
        return
    if reader.GetDimension() != 3:
        kind = "a 2D image" if reader.GetDimension() == 2 else f"{reader.GetDimension()}D (a time series?)"
        raise InputError(f"{path}: is {kind} of size {'x'.join(map(str, size))}; a single 3D volume is required")
    if reader.GetNumberOfComponents() != 1:
        raise InputError(
            f"{path}: has {reader.GetNumberOfComponents()} components per voxel (RGB or vector image); "
            "a scalar (grey-level) volume is required"
        )
    if min(size) < 2:
        raise InputError(
            f"{path}: is a single slice ({'x'.join(map(str, size))}); a 3D volume with at least 2 voxels per axis is required"
        )
    if "complex" in sitk.GetPixelIDValueAsString(reader.GetPixelID()):
        raise InputError(f"{path}: has complex voxels; a real-valued magnitude image is required")


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith((".nii", ".nii.gz"))


def _read_nifti_voxels(path: Path, size: tuple[int, int, int]) -> np.ndarray:
    """NIfTI voxels through nibabel: ITK silently turns NaN/Inf into 0 and reads truncated
    files as if complete, hiding exactly the damage users must be told about."""
    import zlib

    import nibabel as nib

    try:
        array = np.asanyarray(nib.load(path).dataobj)
    except (OSError, EOFError, zlib.error, ValueError) as error:
        raise InputError(f"{path}: the voxel data is corrupt or truncated") from error
    array = array.reshape(array.shape[:3]) if array.ndim == 4 else array
    if array.shape != size:
        raise InputError(f"{path}: voxel data of shape {array.shape} does not match its header {size}")
    return np.ascontiguousarray(array)


def _checked_reader(path: Path) -> sitk.ImageFileReader:
    """The header reader, after every check that needs no voxel: existence, type, shape, budget."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    _check_suffix(path)
    reader = _read_header(path)
    _check_header(path, reader)
    size = reader.GetSize()[:3]
    check_voxel_budget(Grid(size, reader.GetSpacing()[:3], reader.GetOrigin()[:3], np.eye(3)), f"{path}")
    return reader


def _read_image(path: Path) -> sitk.Image:
    reader = _checked_reader(path)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise InputError(f"{path}: the header is readable but the voxel data is corrupt or truncated") from error
    if image.GetDimension() == 4:
        image = image[:, :, :, 0]
    return image


def read_volume(path: str | os.PathLike) -> Volume:
    """Read a scalar 3D volume; the array keeps the file's dtype (8/16-bit ints stay ints).

    Geometry always comes from ITK (as in Slicer); NIfTI voxels from nibabel.
    """
    path = Path(path)
    if _is_nifti(path) and path.is_file():
        reader = _checked_reader(path)
        grid = Grid(reader.GetSize()[:3], reader.GetSpacing()[:3], reader.GetOrigin()[:3], _direction_3d(reader))
        return Volume(_read_nifti_voxels(path, grid.size), grid)
    image = _read_image(path)
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    return Volume(array=np.ascontiguousarray(array), grid=_grid_from_image(image))


def _direction_3d(reader: sitk.ImageFileReader) -> tuple[float, ...]:
    dimension = reader.GetDimension()
    matrix = np.asarray(reader.GetDirection()).reshape(dimension, dimension)
    return tuple(matrix[:3, :3].ravel())


def validate_intensities(volume: Volume, name: str) -> None:
    """Reject volumes a method cannot work on: non-finite or all-constant voxels."""
    array = volume.array
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise InputError(f"{name}: contains {bad:,} NaN/Inf voxels; fix or mask them before super-resolution")
    if array.size == 0 or array.min() == array.max():
        value = array.flat[0] if array.size else "nothing"
        raise InputError(f"{name}: is empty (every voxel is {value}); there is no image to super-resolve")


def read_mask(path: str | os.PathLike, reference: Grid) -> np.ndarray:
    """Read a lesion mask (binary or label map, > 0 is lesion) that must lie on ``reference``."""
    mask = read_volume(path)
    if not mask.grid.matches(reference):
        raise InputError(
            f"{path}: the lesion mask's grid (size {'x'.join(map(str, mask.grid.size))}, spacing "
            f"{_fmt(mask.grid.spacing)}, origin {_fmt(mask.grid.origin)}) differs from the input's (size "
            f"{'x'.join(map(str, reference.size))}, spacing {_fmt(reference.spacing)}, origin "
            f"{_fmt(reference.origin)}); resample the mask onto the input volume first"
        )
    if np.issubdtype(mask.array.dtype, np.floating) and not np.all(np.isfinite(mask.array)):
        raise InputError(f"{path}: the lesion mask contains NaN/Inf values")
    binary = mask.array > 0
    if not binary.any():
        raise InputError(f"{path}: the lesion mask is empty (no voxel > 0)")
    return binary


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def to_sitk(volume: Volume, dtype: np.dtype | type | None = None) -> sitk.Image:
    """SimpleITK image with the volume's exact geometry."""
    array = volume.array if dtype is None else volume.array.astype(dtype, copy=False)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing(volume.grid.spacing)
    image.SetOrigin(volume.grid.origin)
    image.SetDirection(volume.grid.direction)
    return image


def from_sitk(image: sitk.Image) -> Volume:
    return Volume(array=sitk.GetArrayFromImage(image).transpose(2, 1, 0).copy(), grid=_grid_from_image(image))


def cast_like(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast float results back to an integer input type: rounded and clipped to its range."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(array), info.min, info.max).astype(dtype)
    return array.astype(dtype)


def write_volume(volume: Volume, path: str | os.PathLike) -> None:
    """Write NIfTI or NRRD (chosen by suffix), compressed, geometry unchanged."""
    path = Path(path)
    _check_suffix(path)
    sitk.WriteImage(to_sitk(volume), str(path), useCompression=True)
