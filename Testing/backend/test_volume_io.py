"""Geometry and intensity round-trips through NIfTI and NRRD, checked against nibabel."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from conftest import OBLIQUE, make_volume

from inference_backend.imaging.io import (
    cast_like,
    read_volume,
    volume_stem,
    write_volume,
)
from inference_backend.imaging.normalization import IntensityNormalizer
from inference_backend.imaging.volume import LPS_TO_RAS, Grid

FORMATS = ["nii.gz", "nii", "nrrd", "nhdr"]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, -1.0, 1.0]), OBLIQUE], ids=["LPS", "RAS", "oblique"])
def test_round_trip_keeps_geometry_and_values(tmp_path, suffix, direction):
    volume = make_volume(spacing=(0.7, 1.3, 4.0), origin=(-91.2, 17.0, 33.3), direction=direction)
    path = tmp_path / f"v.{suffix}"
    write_volume(volume, path)
    back = read_volume(path)
    assert back.grid.size == volume.grid.size
    np.testing.assert_allclose(back.grid.spacing, volume.grid.spacing, rtol=1e-6)
    np.testing.assert_allclose(back.grid.origin, volume.grid.origin, atol=1e-4)
    np.testing.assert_allclose(back.grid.direction_matrix, volume.grid.direction_matrix, atol=1e-6)
    np.testing.assert_array_equal(back.array, volume.array)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.float32])
def test_dtype_is_kept(tmp_path, dtype):
    volume = make_volume(dtype=dtype)
    write_volume(volume, tmp_path / "v.nrrd")
    back = read_volume(tmp_path / "v.nrrd")
    assert back.array.dtype == dtype
    np.testing.assert_array_equal(back.array, volume.array)


def test_ras_matrix_agrees_with_nibabel(tmp_path):
    """nibabel's NIfTI affine is RAS: our IJK-to-RAS must equal it for an oblique, anisotropic scan."""
    volume = make_volume()
    path = tmp_path / "v.nii.gz"
    write_volume(volume, path)
    np.testing.assert_allclose(read_volume(path).grid.ijk_to_ras(), nib.load(path).affine, atol=1e-4)


def test_ijk_to_ras_round_trip_and_physical_points():
    grid = make_volume().grid
    again = Grid.from_ijk_to_ras(grid.ijk_to_ras(), grid.size)
    assert again.matches(grid, tolerance_mm=1e-9)
    ijk = np.array([3.0, 4.0, 5.0])
    lps = grid.index_to_physical(ijk)
    ras = grid.ijk_to_ras() @ np.append(ijk, 1.0)
    np.testing.assert_allclose(ras[:3], LPS_TO_RAS @ lps)


def test_cast_like_rounds_and_clips():
    values = np.array([-3.2, 0.4, 0.6, 254.6, 300.0])
    np.testing.assert_array_equal(cast_like(values, np.uint8), [0, 0, 1, 255, 255])


def test_normalizer_maps_percentiles_and_inverts_exactly():
    array = make_volume().array
    normalizer = IntensityNormalizer.fit(array)
    normalised = normalizer.forward(array)
    assert normalised.min() == pytest.approx(-1.0, abs=0.05)
    above = normalised[array > normalizer.low]
    assert np.percentile(above, 99.5) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(normalizer.inverse(normalised), array, rtol=1e-5, atol=1e-3)


def test_volume_stem():
    assert volume_stem("/a/sub-01_T1w.nii.gz") == "sub-01_T1w"
    assert volume_stem("b.NRRD") == "b"
