"""Reading and writing volumes (NIfTI, NRRD, a folder holding one DICOM series) through
SimpleITK, with input validation.

Every rejection is an :class:`~inference_backend.errors.InputError` naming the file and the
problem, raised before any pixel is processed; the header is checked before pixels load.
Every write is read back: ITK's NIfTI writer reports success on a full disk.
"""
from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from inference_backend.errors import InputError, MRISRError, ResourceError
from inference_backend.imaging.volume import Grid, Volume, fmt_values

SUPPORTED_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr")
DEFAULT_MAX_VOXELS = 2**28  # ~268 M voxels: ~1 GiB per float32 copy; a job holds a few copies
MAX_INTENSITY = 1e18  # methods compute in float32 (max 3.4e38); variance maps square the intensities
SHEAR_TOLERANCE_MM = 0.01  # a direction matrix NIfTI would straighten by less than this is written as NIfTI
SINGULAR_DIRECTION = 1e-6  # |determinant| of the unit-column direction matrix below which no 3D orientation is defined
SLICE_TOLERANCE_MM = 0.01  # DICOM slice positions: the least deviation taken for a gap or a tilt


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


def volume_stem(path: str | os.PathLike) -> str:
    """File name without its image suffix: ``sub-01_T1w.nii.gz`` -> ``sub-01_T1w``; a DICOM
    series folder's name as it is."""
    if Path(path).is_dir():
        return Path(path).resolve().name
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


def _check_header(path: Path, dimension: int, size: Sequence[int], components: int, pixel_id: int) -> None:
    """Refuse what is not one scalar 3D volume: 2D, a time series, complex, RGB/vector, a single slice."""
    if dimension == 4 and size[3] == 1:
        dimension, size = 3, size[:3]
    if dimension != 3:
        kind = "a 2D image" if dimension == 2 else f"{dimension}D (a time series?)"
        raise InputError(f"{path}: is {kind} of size {'x'.join(map(str, size))}; a single 3D volume is required")
    if "complex" in sitk.GetPixelIDValueAsString(pixel_id):  # ITK counts a complex voxel as 2 components
        raise InputError(f"{path}: has complex voxels; a real-valued magnitude image is required")
    if components != 1:
        raise InputError(
            f"{path}: has {components} components per voxel (RGB or vector image); a scalar (grey-level) volume is required"
        )
    if min(size) < 2:
        raise InputError(
            f"{path}: is a single slice ({'x'.join(map(str, size))}); a 3D volume with at least 2 voxels per axis is required"
        )


def _check_geometry(path: Path, spacing: Sequence[float], direction: Sequence[float]) -> None:
    """Refuse a voxel size or an orientation that defines no 3D grid, saying which."""
    bad = [axis for axis, value in zip("xyz", spacing) if not (math.isfinite(value) and value > 0)]
    if bad:
        raise InputError(
            f"{path}: the voxel spacing {fmt_values(spacing)} mm is zero, negative or not a number along "
            f"{', '.join(bad)}; the header gives no usable voxel size"
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
        f"{path}: the direction matrix {fmt_values(matrix.ravel())} is singular ({why}); the header defines no 3D orientation"
    )


def _check_nifti_voxel_size(path: Path) -> None:
    """ITK (niftilib) reads a pixdim of 0 as 1 mm, and nibabel "fixes" it the same way: the raw
    header is read here, before ITK (which warns about it on stderr), so a missing voxel size is
    refused instead of assumed. What is no NIfTI header is left to ITK to refuse."""
    import zlib

    import nibabel as nib
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(path) as stream:
            block = stream.read(nib.Nifti2Header.sizeof_hdr)
    except (OSError, EOFError, zlib.error):
        return
    kinds = [kind for kind in (nib.Nifti1Header, nib.Nifti2Header) if kind.may_contain_header(block)]
    if not kinds:
        return
    pixdim = kinds[0](block[: kinds[0].sizeof_hdr], check=False)["pixdim"][1:4]
    bad = [axis for axis, value in zip("xyz", pixdim) if not (math.isfinite(value) and value > 0)]
    if bad:
        raise InputError(
            f"{path}: the NIfTI header's voxel size (pixdim) {fmt_values(pixdim)} is zero, negative or not a number "
            f"along {', '.join(bad)}; refusing to assume 1 mm: fix the header's voxel size"
        )


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith((".nii", ".nii.gz"))


def _read_nifti_voxels(path: Path, size: tuple[int, int, int]) -> np.ndarray:
    """NIfTI voxels through nibabel: ITK silently turns NaN/Inf into 0 and reads truncated
    files as if complete, hiding exactly the damage users must be told about."""
    import zlib

    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    try:
        array = np.asanyarray(nib.load(path).dataobj)
    except (OSError, EOFError, zlib.error, ValueError, ImageFileError) as error:
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
    if _is_nifti(path):
        _check_nifti_voxel_size(path)
    reader = _read_header(path)
    _check_header(path, reader.GetDimension(), reader.GetSize(), reader.GetNumberOfComponents(), reader.GetPixelID())
    _check_geometry(path, reader.GetSpacing()[:3], _direction_3d(reader))
    check_voxel_count(reader.GetSize()[:3], f"{path}")
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
    """Read a scalar 3D volume from a file or a folder holding one DICOM series; the array keeps
    the file's dtype (8/16-bit ints stay ints).

    Geometry always comes from ITK (as in Slicer); NIfTI voxels from nibabel.
    """
    path = Path(path)
    if path.is_dir():
        return _read_dicom_series(path)
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


@contextmanager
def _itk_warnings_off() -> Iterator[None]:
    """ITK prints warnings on stderr (GDCM: "No Series were found"); the message users get is ours."""
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def _dicom_series_files(folder: Path) -> list[str]:
    """The files of the one DICOM series in ``folder``, in slice order (GDCM's sort)."""
    with _itk_warnings_off():
        series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
        files = {uid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid) for uid in series}
    if not files:
        raise InputError(
            f"{folder}: is a folder without a DICOM series; give a volume file ({', '.join(SUPPORTED_SUFFIXES)}) "
            "or a folder holding one DICOM series"
        )
    if len(files) > 1:
        listing = "; ".join(f"{uid}: {_series_description(names[0])}, {len(names)} files" for uid, names in files.items())
        raise InputError(
            f"{folder}: holds {len(files)} DICOM series ({listing}); move the one to process into a folder of its own"
        )
    return list(next(iter(files.values())))


def _series_description(file: str) -> str:
    header = _read_header(Path(file))
    return repr(header.GetMetaData("0008|103e").strip()) if header.HasMetaDataKey("0008|103e") else "no description"


def _check_slice_stack(folder: Path, files: list[str]) -> None:
    """ITK builds a series' geometry from its first slices: refuse stacks where that is not
    exact, i.e. unevenly spaced slices (missing slices) and slices shifted sideways (gantry tilt)."""
    geometry = [_slice_geometry(file) for file in files]
    orientation = geometry[0][1]
    normal = np.cross(orientation[:3], orientation[3:])
    steps = np.diff(np.asarray([position for position, _ in geometry]), axis=0)
    along = steps @ normal
    sideways = np.linalg.norm(steps - np.outer(along, normal), axis=1)
    tolerance = max(SLICE_TOLERANCE_MM, 1e-3 * float(np.abs(along).mean()))
    if np.ptp(along) > tolerance or np.abs(along).min() <= tolerance:
        raise InputError(
            f"{folder}: the slices are {np.abs(along).min():.4g} to {np.abs(along).max():.4g} mm apart, not evenly spaced "
            "(missing slices or a varying slice distance); one 3D grid cannot hold them"
        )
    if sideways.max() > tolerance:
        raise InputError(
            f"{folder}: each slice is shifted sideways by up to {sideways.max():.4g} mm from the last (gantry tilt); "
            "one 3D grid cannot hold them without resampling: correct the tilt first"
        )


def _slice_geometry(file: str) -> tuple[list[float], list[float]]:
    """A DICOM slice's position (0020,0032) and orientation (0020,0037)."""
    header = _read_header(Path(file))
    try:
        return tuple([float(v) for v in header.GetMetaData(tag).split("\\")] for tag in ("0020|0032", "0020|0037"))
    except (RuntimeError, ValueError) as error:
        raise InputError(f"{file}: a slice without a readable position or orientation (0020,0032 / 0020,0037)") from error


def _read_dicom_series(folder: Path) -> Volume:
    """The one DICOM series in ``folder`` (SimpleITK's series reader), after the checks a file
    gets and those of its slice stack, so the geometry is exactly the scanner's."""
    files = _dicom_series_files(folder)
    first = _read_header(Path(files[0]))
    if first.GetDimension() > 2 and first.GetSize()[2] > 1:
        raise InputError(f"{folder}: holds a multi-frame DICOM file; convert it to NIfTI first (e.g. with dcm2niix)")
    size = (*first.GetSize()[:2], len(files))
    _check_header(folder, 3, size, first.GetNumberOfComponents(), first.GetPixelID())
    check_voxel_count(size, f"{folder}")
    _check_slice_stack(folder, files)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        with _itk_warnings_off():
            image = reader.Execute()
    except RuntimeError as error:
        raise InputError(f"{folder}: the DICOM series cannot be read (corrupt files, or slices of different sizes?)") from error
    _check_geometry(folder, image.GetSpacing(), image.GetDirection())
    volume = from_sitk(image)
    volume.slice_thickness = _slice_thickness(first)
    return volume


def _slice_thickness(header: sitk.ImageFileReader) -> float | None:
    """A DICOM slice's Slice Thickness (0018,0050) in mm; None where absent, empty or not a
    positive number (the job then takes the slice spacing)."""
    if not header.HasMetaDataKey("0018|0050"):
        return None
    try:
        thickness = float(header.GetMetaData("0018|0050").strip())
    except ValueError:
        return None
    return thickness if math.isfinite(thickness) and thickness > 0 else None


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


def read_mask(path: str | os.PathLike, reference: Grid) -> np.ndarray:
    """Read a lesion mask (binary or label map, > 0 is lesion) that must lie on ``reference``."""
    mask = read_volume(path)
    if not mask.grid.matches(reference):
        raise InputError(
            f"{path}: the lesion mask's grid differs from the input's (mask vs input: {mask.grid.mismatch(reference)}); "
            "resample the mask onto the input volume first"
        )
    if np.issubdtype(mask.array.dtype, np.floating) and not np.all(np.isfinite(mask.array)):
        raise InputError(f"{path}: the lesion mask contains NaN/Inf values")
    binary = mask.array > 0
    if not binary.any():
        raise InputError(f"{path}: the lesion mask is empty (no voxel > 0)")
    return binary


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


def check_storable(grid: Grid, path: str | os.PathLike, what: str) -> None:
    """Refuse to write a sheared grid as NIfTI: NIfTI stores rotations only, and ITK would
    straighten the axes with a warning, moving voxels; NRRD keeps any direction matrix."""
    shear = grid.shear_mm() if _is_nifti(Path(path)) else 0.0
    if shear > SHEAR_TOLERANCE_MM:
        raise InputError(
            f"{what}: the direction matrix is not orthogonal (sheared); NIfTI cannot store it and would move "
            f"voxels by up to {shear:.3g} mm: use --output-format nrrd, which keeps it"
        )


def write_volume(volume: Volume, path: str | os.PathLike) -> None:
    """Write NIfTI or NRRD (chosen by suffix), compressed, geometry unchanged, and read it
    back: ITK's NIfTI writer reports success on a full disk, leaving a truncated file."""
    path = Path(path)
    _check_suffix(path)
    check_storable(volume.grid, path, f"{path}")
    try:
        sitk.WriteImage(to_sitk(volume), str(path), useCompression=True)
        written = _voxels_on_disk(path, volume.grid.size)
    except (RuntimeError, InputError) as error:
        raise _write_error(path) from error
    if not np.array_equal(written, volume.array, equal_nan=np.issubdtype(volume.array.dtype, np.inexact)):
        raise _write_error(path)


def _voxels_on_disk(path: Path, size: tuple[int, int, int]) -> np.ndarray:
    if _is_nifti(path):
        return _read_nifti_voxels(path, size)
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).transpose(2, 1, 0)


def _write_error(path: Path) -> MRISRError:
    if not os.access(path.parent, os.W_OK):
        return InputError(f"cannot write {path}: its folder does not exist or is not writable")
    return ResourceError(
        f"{path} could not be written completely ({free_space(path.parent)} free on its device): the disk is full or failing"
    )


def free_space(folder: Path) -> str:
    """The free space of ``folder``'s device, for messages."""
    return f"{shutil.disk_usage(folder).free / 2**20:,.0f} MB"
