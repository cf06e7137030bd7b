"""Reading and writing volumes: NIfTI (1 and 2), NRRD, or a folder holding one DICOM series.

Every rejection is an :class:`~inference_backend.errors.InputError` naming the file and the
problem, raised before any pixel is processed; the header is checked before pixels load
(:mod:`~inference_backend.imaging.validation`, and per format :mod:`~inference_backend.imaging.nifti`,
:mod:`~inference_backend.imaging.nrrd`, :mod:`~inference_backend.imaging.dicom`). Every write
is read back, geometry included: ITK's NIfTI writer reports success on a full disk.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from inference_backend.errors import InputError, MRISRError, ResourceError
from inference_backend.imaging import dicom, nifti
from inference_backend.imaging.itk import (
    from_sitk,
    header_geometry,
    header_grid,
    is_complex,
    read_header,
    to_sitk,
    warnings_off,
)
from inference_backend.imaging.nrrd import check_nrrd_header
from inference_backend.imaging.validation import (
    SUPPORTED_SUFFIXES,
    check_geometry,
    check_header,
    check_path_text,
    check_voxel_count,
)
from inference_backend.imaging.volume import Grid, Volume

SHEAR_TOLERANCE_MM = 0.01  # a direction matrix NIfTI would straighten by less than this is written as NIfTI
READ_BACK_TOLERANCE_MM = 0.01  # NIfTI stores its transform in float32


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


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith((".nii", ".nii.gz"))


def _read_nifti(path: Path) -> Volume:
    """A NIfTI file: header checks, the grid by the NIfTI standard's rule, voxels through nibabel."""
    header = nifti.nifti_header(path)
    if header is None:
        read_header(path)  # not a NIfTI header: ITK's refusal names the file
        raise InputError(f"{path}: cannot be read as a NIfTI image (corrupt or truncated file?)")
    nifti.check_voxel_size(path, header)
    if nifti.is_nifti2(header):  # this ITK reads no NIfTI-2: nibabel's header is the only reading
        dims = [int(n) for n in header["dim"][1 : int(header["dim"][0]) + 1]]
        dtype = header.get_data_dtype()
        components = len(dtype.fields) if dtype.fields else 1
        check_header(path, len(dims), dims, components, dtype.kind == "c")
        itk_grid = None
    else:
        reader = read_header(path)
        check_header(path, reader.GetDimension(), reader.GetSize(), reader.GetNumberOfComponents(), is_complex(reader.GetPixelID()))
        dims = list(reader.GetSize())
        check_geometry(path, *header_geometry(reader))
        itk_grid = header_grid(reader)
    size = (dims[0], dims[1], dims[2])
    check_voxel_count(size, f"{path}")
    grid, source = nifti.chosen_grid(path, header, itk_grid, size)
    check_geometry(path, grid.spacing, grid.direction, grid.origin)
    return Volume(nifti.read_voxels(path, size), grid, provenance={"geometry": f"NIfTI {source}"})


def _read_nrrd(path: Path) -> Volume:
    """A NRRD file or detached header: its data files confined to its folder, then ITK."""
    check_nrrd_header(path)
    reader = read_header(path)
    check_header(path, reader.GetDimension(), reader.GetSize(), reader.GetNumberOfComponents(), is_complex(reader.GetPixelID()))
    check_geometry(path, *header_geometry(reader))
    check_voxel_count(reader.GetSize()[:3], f"{path}")
    try:
        with warnings_off():
            image = reader.Execute()
    except RuntimeError as error:
        raise InputError(f"{path}: the header is readable but the voxel data is corrupt or truncated") from error
    if image.GetDimension() == 4:
        image = image[:, :, :, 0]
    volume = from_sitk(image)
    volume.provenance = {"geometry": "NRRD space origin and space directions"}
    return volume


def read_volume(path: str | os.PathLike) -> Volume:
    """Read a scalar 3D volume from a file or a folder holding one DICOM series; the array keeps
    the file's dtype (8/16-bit ints stay ints)."""
    check_path_text(path, "the input")
    path = Path(path)
    if path.is_dir():
        return dicom.read_series(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    _check_suffix(path)
    return _read_nifti(path) if _is_nifti(path) else _read_nrrd(path)


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


def cast_like(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast float results back to an integer input type: rounded and clipped to its range."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(array), info.min, info.max).astype(dtype)
    return array.astype(dtype)


def check_storable(grid: Grid, path: str | os.PathLike, what: str) -> None:
    """Refuse to write a sheared grid as NIfTI: ITK writes rotations only, and would
    straighten the axes with a warning, moving voxels; NRRD keeps any direction matrix."""
    shear = grid.shear_mm() if _is_nifti(Path(path)) else 0.0
    if shear > SHEAR_TOLERANCE_MM:
        raise InputError(
            f"{what}: the direction matrix is not orthogonal (sheared); NIfTI cannot store it and would move "
            f"voxels by up to {shear:.3g} mm: use --output-format nrrd, which keeps it"
        )


def write_volume(volume: Volume, path: str | os.PathLike) -> None:
    """Write NIfTI or NRRD (chosen by suffix), compressed, geometry unchanged, and read it
    back, voxels and geometry: ITK's NIfTI writer reports success on a full disk, leaving a
    truncated file, and a grid beyond what the format holds would come back elsewhere."""
    path = Path(path)
    check_path_text(path, "the output")
    _check_suffix(path)
    check_storable(volume.grid, path, f"{path}")
    try:
        with warnings_off():
            sitk.WriteImage(to_sitk(volume), str(path), useCompression=True)
        written = _read_back(path, volume.grid.size)
    except (RuntimeError, InputError) as error:
        raise _write_error(path) from error
    if not np.array_equal(written.array, volume.array, equal_nan=np.issubdtype(volume.array.dtype, np.inexact)):
        raise _write_error(path)
    if not written.grid.matches(volume.grid, READ_BACK_TOLERANCE_MM):
        raise InputError(
            f"{path}: the file format does not hold this grid exactly ({written.grid.mismatch(volume.grid)}); "
            "use --output-format nrrd"
        )


def _read_back(path: Path, size: tuple[int, int, int]) -> Volume:
    if _is_nifti(path):
        header = read_header(path)
        return Volume(nifti.read_voxels(path, size), header_grid(header))
    return from_sitk(sitk.ReadImage(str(path)))


def _write_error(path: Path) -> MRISRError:
    if not os.access(path.parent, os.W_OK):
        return InputError(f"cannot write {path}: its folder does not exist or is not writable")
    return ResourceError(
        f"{path} could not be written completely ({free_space(path.parent)} free on its device): the disk is full or failing"
    )


def free_space(folder: Path) -> str:
    """The free space of ``folder``'s device, for messages."""
    return f"{shutil.disk_usage(folder).free / 2**20:,.0f} MB"
