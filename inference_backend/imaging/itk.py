"""The SimpleITK bridge: images to volumes and back with their exact geometry, and header
reads that stay silent (the message users get is ours, not ITK's warning on stderr)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from inference_backend.errors import InputError
from inference_backend.imaging.volume import Grid, Volume


@contextmanager
def warnings_off() -> Iterator[None]:
    """ITK prints warnings on stderr (GDCM: "No Series were found"); the message users get is ours."""
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def read_header(path: Path) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with warnings_off():
            reader.ReadImageInformation()
    except RuntimeError as error:
        raise InputError(f"{path}: cannot be read as a NIfTI or NRRD image (corrupt or truncated file?)") from error
    return reader


def header_geometry(reader: sitk.ImageFileReader) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """(spacing, direction, origin) of a header's first three axes, unchecked."""
    dimension = reader.GetDimension()
    direction = np.asarray(reader.GetDirection()).reshape(dimension, dimension)[:3, :3]
    return reader.GetSpacing()[:3], tuple(direction.ravel()), reader.GetOrigin()[:3]


def header_grid(reader: sitk.ImageFileReader) -> Grid:
    """The 3D grid of a header (the first three axes of a 4D one), after :func:`header_geometry` was checked."""
    spacing, direction, origin = header_geometry(reader)
    return Grid(reader.GetSize()[:3], spacing, origin, direction)


def is_complex(pixel_id: int) -> bool:
    return "complex" in sitk.GetPixelIDValueAsString(pixel_id)  # ITK counts a complex voxel as 2 components


def grid_from_image(image: sitk.Image) -> Grid:
    return Grid(size=image.GetSize(), spacing=image.GetSpacing(), origin=image.GetOrigin(), direction=image.GetDirection())


def to_sitk(volume: Volume, dtype: np.dtype | type | None = None) -> sitk.Image:
    """SimpleITK image with the volume's exact geometry."""
    array = volume.array if dtype is None else volume.array.astype(dtype, copy=False)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing(volume.grid.spacing)
    image.SetOrigin(volume.grid.origin)
    image.SetDirection(volume.grid.direction)
    return image


def from_sitk(image: sitk.Image) -> Volume:
    return Volume(array=sitk.GetArrayFromImage(image).transpose(2, 1, 0).copy(), grid=grid_from_image(image))
