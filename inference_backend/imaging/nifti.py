"""NIfTI-1 and NIfTI-2 headers and voxels, read with nibabel where ITK would hide a problem.

* **Which transform places the image.** The NIfTI standard (and FSL, nibabel, FreeSurfer)
  take the sform when its code is above 0, else the qform, else no orientation at all. ITK
  prefers the qform for some sform codes and straightens a sheared sform, so a file whose two
  transforms disagree lands elsewhere than these tools put it. The standard's rule decides
  here; where it agrees with ITK's reading (nearly every file) ITK's grid is kept as it is, as
  Slicer reads it.
* **The voxel size.** A pixdim of 0 is read as 1 mm by ITK and nibabel alike: refused here.
* **The voxels.** ITK turns NaN into 0 and reads a truncated file as if complete.
* **NIfTI-2**, which this ITK does not read, is read entirely through nibabel.
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from inference_backend.errors import InputError
from inference_backend.imaging.volume import LPS_TO_RAS, Grid, fmt_values

GEOMETRY_TOLERANCE_MM = 1e-3  # two readings of one header that agree this well are the same grid
XFORM_CODES = {1: "scanner", 2: "aligned", 3: "Talairach", 4: "MNI152", 5: "template"}


def nifti_header(path: Path):
    """The file's NIfTI-1 or NIfTI-2 header as nibabel reads it (unchecked), or None when the
    file holds no NIfTI header (ITK then says what it is)."""
    import nibabel as nib
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(path) as stream:
            block = stream.read(nib.Nifti2Header.sizeof_hdr)
    except (OSError, EOFError, zlib.error):
        return None
    for kind in (nib.Nifti1Header, nib.Nifti2Header):
        if kind.may_contain_header(block):
            return kind(block[: kind.sizeof_hdr], check=False)
    return None


def is_nifti2(header) -> bool:
    import nibabel as nib

    return isinstance(header, nib.Nifti2Header)


def check_voxel_size(path: Path, header) -> None:
    """Refuse a zero, negative or non-numeric pixdim instead of assuming 1 mm."""
    pixdim = header["pixdim"][1:4]
    bad = [axis for axis, value in zip("xyz", pixdim) if not (math.isfinite(value) and value > 0)]
    if bad:
        raise InputError(
            f"{path}: the NIfTI header's voxel size (pixdim) {fmt_values(pixdim)} is zero, negative or not a number "
            f"along {', '.join(bad)}; refusing to assume 1 mm: fix the header's voxel size"
        )


def standard_grid(header, size: tuple[int, int, int]) -> tuple[Grid | None, str]:
    """(the grid the NIfTI standard places the voxels on: the sform if its code is above 0,
    else the qform; None when neither has a code; which transform it is, for reports)."""
    sform_code, qform_code = int(header["sform_code"]), int(header["qform_code"])
    if sform_code > 0:
        affine, source = header.get_sform(), f"sform (code {sform_code}: {XFORM_CODES.get(sform_code, 'unknown')})"
    elif qform_code > 0:
        affine, source = header.get_qform(), f"qform (code {qform_code}: {XFORM_CODES.get(qform_code, 'unknown')})"
    else:
        return None, "no sform or qform (codes 0): the voxel grid as ITK places it, without an orientation"
    if not np.all(np.isfinite(affine)):
        raise InputError(f"the NIfTI header's {source.split()[0]} holds entries that are not numbers")
    lps = LPS_TO_RAS @ np.asarray(affine, dtype=float)[:3]
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    if not np.all(spacing > 0):
        raise InputError(f"the NIfTI header's {source.split()[0]} has an axis of length 0")
    return Grid(size, spacing, lps[:, 3], lps[:, :3] / spacing), source


def chosen_grid(path: Path, header, itk_grid: Grid | None, size: tuple[int, int, int]) -> tuple[Grid, str]:
    """(the grid to use, and where it came from): ITK's where the standard's rule agrees with
    it (or names no transform), else the standard's, with the disagreement said."""
    try:
        grid, source = standard_grid(header, size)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None
    if grid is None:
        if itk_grid is None:
            raise InputError(f"{path}: a NIfTI-2 file without an sform or qform places its voxels nowhere; add one")
        return itk_grid, source
    if itk_grid is None or itk_grid.matches(grid, GEOMETRY_TOLERANCE_MM):
        return (itk_grid or grid), source
    other = "qform" if source.startswith("sform") else "sform"
    return grid, f"{source}; the {other} disagrees by up to {itk_grid.corner_distance_mm(grid):.3g} mm and is not used"


def read_voxels(path: Path, size: tuple[int, int, int]) -> np.ndarray:
    """The voxels through nibabel, their scaling applied; a corrupt or truncated file refused."""
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
