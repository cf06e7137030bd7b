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


def nifti_with_forms(path, sform: np.ndarray, sform_code: int, qform: np.ndarray, qform_code: int, version: int = 1):
    """A NIfTI whose sform and qform are set independently (nibabel writes what it is given)."""
    array = make_volume(shape=(12, 10, 8)).array
    image = (nib.Nifti1Image if version == 1 else nib.Nifti2Image)(array, None)
    image.set_qform(qform, code=qform_code)
    image.set_sform(sform, code=sform_code)
    nib.save(image, path)
    return path


QFORM = np.array([[-0.9, 0, 0, 40.0], [0, 0.9, 0, -20.0], [0, 0, 3.0, 5.0], [0, 0, 0, 1]])
MOVED = QFORM + np.array([[0, 0, 0, 7.5], [0, 0, 0, -3.0], [0, 0, 0, 2.0], [0, 0, 0, 0]])  # the sform: 8.32 mm away
SHEARED = QFORM + np.array([[0, 0.3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize(
    ("sform", "sform_code", "qform_code", "expected", "source"),
    [
        (MOVED, 2, 1, MOVED, "sform (code 2: aligned); the qform disagrees by up to 8.32 mm"),
        (MOVED, 4, 1, MOVED, "sform (code 4: MNI152)"),
        (MOVED, 1, 1, MOVED, "sform (code 1: scanner)"),
        (MOVED, 0, 1, QFORM, "qform (code 1: scanner)"),
        (SHEARED, 2, 1, SHEARED, "sform (code 2: aligned); the qform disagrees"),
    ],
    ids=["aligned-sform", "mni-sform", "scanner-sform", "qform-only", "sheared-sform"],
)
def test_nifti_geometry_follows_the_standard_rule_as_nibabel_does(tmp_path, sform, sform_code, qform_code, expected, source):
    """The sform when its code is above 0, else the qform (the NIfTI standard, FSL, nibabel);
    a sheared sform keeps its shear. nibabel's best affine is the reference."""
    path = nifti_with_forms(tmp_path / "forms.nii.gz", sform, sform_code, QFORM, qform_code)
    volume = read_volume(path)
    np.testing.assert_allclose(volume.grid.ijk_to_ras(), nib.load(path).affine, atol=1e-4)
    np.testing.assert_allclose(volume.grid.ijk_to_ras(), expected, atol=1e-4)
    assert source in volume.provenance["geometry"]


def test_a_sheared_sform_runs_to_nrrd_and_is_refused_as_nifti(tmp_path, capfd):
    from inference_backend.cli import main
    from inference_backend.imaging.target import target_grid

    path = nifti_with_forms(tmp_path / "sheared.nii.gz", SHEARED, 2, QFORM, 1)
    base = ["run", str(path), "--method", "interpolation", "--scale", "1,1,2", "--progress", "none"]
    assert main([*base, "--out", str(tmp_path / "nifti")]) == 2
    assert "--output-format nrrd" in capfd.readouterr().err
    assert main([*base, "--out", str(tmp_path / "nrrd"), "--output-format", "nrrd"]) == 0
    result = read_volume(tmp_path / "nrrd" / "sheared_sr.nrrd")
    assert result.grid.matches(target_grid(read_volume(path).grid, scale=(1, 1, 2)), tolerance_mm=1e-4)
    assert result.grid.shear_mm() > 1.0


def test_nifti2_reads_like_nifti1(tmp_path):
    one = nifti_with_forms(tmp_path / "one.nii.gz", MOVED, 2, QFORM, 1)
    two = nifti_with_forms(tmp_path / "two.nii.gz", MOVED, 2, QFORM, 1, version=2)
    assert nib.load(two).header.sizeof_hdr == 540
    first, second = read_volume(one), read_volume(two)
    assert second.grid.matches(first.grid, tolerance_mm=1e-6)
    np.testing.assert_array_equal(second.array, first.array)


def test_geometry_is_read_back_after_writing(tmp_path, monkeypatch):
    """A grid the written file does not hold (here: a writer that loses the origin) is refused."""
    import SimpleITK as sitk

    from inference_backend.errors import InputError

    write = sitk.WriteImage

    def losing_origin(image, path, *args, **kwargs):
        image = sitk.Image(image)
        image.SetOrigin((0.0, 0.0, 0.0))
        write(image, path, *args, **kwargs)

    monkeypatch.setattr(sitk, "WriteImage", losing_origin)
    with pytest.raises(InputError, match="does not hold this grid exactly"):
        write_volume(make_volume(), tmp_path / "v.nrrd")
