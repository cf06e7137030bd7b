"""A folder holding one DICOM series, read as one 3D volume with exactly the scanner's geometry.

SimpleITK's series reader builds the geometry from the first slices and trusts the rest: the
checks here refuse what one 3D grid cannot hold (unevenly spaced or tilted slices, a mosaic,
a multi-frame file) and a series that is evidently incomplete (fewer files than the series
says it has). A gap in the instance numbers at the start is said, not refused: numbering
conventions vary between scanners.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from inference_backend.errors import InputError
from inference_backend.imaging.itk import from_sitk, is_complex, read_header, warnings_off
from inference_backend.imaging.validation import (
    SUPPORTED_SUFFIXES,
    check_geometry,
    check_header,
    check_voxel_count,
)
from inference_backend.imaging.volume import Volume

SLICE_TOLERANCE_MM = 0.01  # slice positions: the least deviation taken for a gap or a tilt


def series_files(folder: Path) -> list[str]:
    """The files of the one DICOM series in ``folder``, in slice order (GDCM's sort)."""
    with warnings_off():
        series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
        files = {uid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid) for uid in series}
    if not files:
        raise InputError(
            f"{folder}: is a folder without a DICOM series; give a volume file ({', '.join(SUPPORTED_SUFFIXES)}) "
            "or a folder holding one DICOM series"
        )
    if len(files) > 1:
        listing = "; ".join(f"{uid}: {_tag(names[0], '0008|103e') or 'no description'}, {len(names)} files" for uid, names in files.items())
        raise InputError(f"{folder}: holds {len(files)} DICOM series ({listing}); move the one to process into a folder of its own")
    return list(next(iter(files.values())))


def _tag(file: str, tag: str) -> str:
    header = read_header(Path(file))
    return header.GetMetaData(tag).strip() if header.HasMetaDataKey(tag) else ""


def _check_not_mosaic(folder: Path, first: sitk.ImageFileReader) -> None:
    image_type = first.GetMetaData("0008|0008").upper() if first.HasMetaDataKey("0008|0008") else ""
    if "MOSAIC" in image_type or first.HasMetaDataKey("0019|100a"):
        raise InputError(
            f"{folder}: is a Siemens mosaic (the slices of a volume tiled in one image); convert it to NIfTI first, "
            "e.g. with dcm2niix, which unpacks the tiles"
        )


def _check_complete(folder: Path, files: list[str]) -> str | None:
    """Refuse a series with fewer files than its Images in Acquisition (0020,1002); a warning
    when its instance numbers (0020,0013) do not start at 1 (a first slice missing?)."""
    count = len(files)
    expected = _tag(files[0], "0020|1002")
    if expected.isdigit() and int(expected) > count:
        raise InputError(
            f"{folder}: holds {count} slice files, but the series has {int(expected)} images (Images in Acquisition, "
            "0020,1002): slices are missing; copy the whole series"
        )
    numbers = sorted(int(n) for n in (_tag(file, "0020|0013") for file in files) if n.lstrip("-").isdigit())
    if len(numbers) == count and numbers[0] > 1 and numbers[-1] - numbers[0] == count - 1:
        return (
            f"{folder}: the instance numbers run {numbers[0]} to {numbers[-1]}, not from 1: is the first slice "
            f"missing? ({count} slices read)"
        )
    return None


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
    if np.abs(along).min() <= tolerance:
        raise InputError(
            f"{folder}: two slice files lie at the same position ({np.abs(along).min():.4g} mm apart); one 3D grid cannot "
            "hold them (duplicates, or several stacks in one series)"
        )
    if np.ptp(along) > tolerance:
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
    header = read_header(Path(file))
    try:
        return tuple([float(v) for v in header.GetMetaData(tag).split("\\")] for tag in ("0020|0032", "0020|0037"))
    except (RuntimeError, ValueError) as error:
        raise InputError(f"{file}: a slice without a readable position or orientation (0020,0032 / 0020,0037)") from error


def read_series(folder: Path) -> Volume:
    """The one DICOM series in ``folder`` (SimpleITK's series reader), after the checks a file
    gets and those of its slice stack, so the geometry is exactly the scanner's."""
    files = series_files(folder)
    first = read_header(Path(files[0]))
    _check_not_mosaic(folder, first)
    if first.GetDimension() > 2 and first.GetSize()[2] > 1:
        raise InputError(f"{folder}: holds a multi-frame DICOM file; convert it to NIfTI first (e.g. with dcm2niix)")
    size = (*first.GetSize()[:2], len(files))
    check_header(folder, 3, size, first.GetNumberOfComponents(), is_complex(first.GetPixelID()))
    check_voxel_count(size, f"{folder}")
    warning = _check_complete(folder, files)
    _check_slice_stack(folder, files)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        with warnings_off():
            image = reader.Execute()
    except RuntimeError as error:
        raise InputError(f"{folder}: the DICOM series cannot be read (corrupt files, or slices of different sizes?)") from error
    check_geometry(folder, image.GetSpacing(), image.GetDirection(), image.GetOrigin())
    volume = from_sitk(image)
    volume.slice_thickness = _slice_thickness(first)
    volume.provenance = {"geometry": "DICOM image position and orientation (0020,0032 / 0020,0037)"}
    if warning:
        volume.provenance["warnings"] = [warning]
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
