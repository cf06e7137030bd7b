"""The interpolation baseline: exactness on known signals, grids to scale and to spacing."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import OBLIQUE, make_volume
from inference_backend.imaging.resampling import resample
from inference_backend.imaging.target import target_grid
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.job import JobOptions
from inference_backend.pipeline import process


def ramp_volume(power: int) -> Volume:
    """Intensity = (k index)^power along the thick axis (spacing 4 mm), oblique grid."""
    grid = Grid((6, 5, 12), (1.0, 1.0, 4.0), (3.0, -2.0, 5.0), OBLIQUE)
    k = np.arange(12, dtype=np.float32)
    return Volume(np.broadcast_to(k**power, grid.size).astype(np.float32).copy(), grid)


def fine_positions(source: Grid, fine: Grid) -> np.ndarray:
    """Fractional source k index of each fine voxel centre along k."""
    return (np.arange(fine.size[2]) + 0.5) * fine.spacing[2] / source.spacing[2] - 0.5


@pytest.mark.parametrize("kind", ["linear", "bspline", "lanczos"])
def test_linear_signal_is_reproduced_between_centres_and_held_at_the_edges(kind):
    volume = ramp_volume(1)
    fine = target_grid(volume.grid, scale=(1, 1, 4))
    result = resample(volume, fine, kind).array
    positions = fine_positions(volume.grid, fine)
    inside = (positions >= 3) & (positions <= volume.grid.size[2] - 4)
    np.testing.assert_allclose(result[2, 2, inside], positions[inside], atol=2e-3 if kind != "lanczos" else 5e-2)
    assert result[2, 2, 0] == pytest.approx(0.0, abs=0.3)  # edge replicated, not faded to 0
    assert result[2, 2, -1] == pytest.approx(11.0, abs=0.3)


def test_bspline_reproduces_a_quadratic_that_linear_does_not():
    volume = ramp_volume(2)
    fine = target_grid(volume.grid, scale=(1, 1, 4))
    positions = fine_positions(volume.grid, fine)
    inside = (positions >= 3) & (positions <= volume.grid.size[2] - 4)
    bspline = resample(volume, fine, "bspline").array[2, 2, inside]
    linear = resample(volume, fine, "linear").array[2, 2, inside]
    truth = positions[inside] ** 2
    assert np.abs(bspline - truth).max() < 0.05  # 0.1% of the signal, from the edge padding
    assert np.abs(linear - truth).max() > 0.15  # linear interpolation's error on a parabola: 3/16


@pytest.mark.parametrize("request_kind", ["scale", "spacing"])
def test_process_interpolation_to_scale_or_spacing(oblique_volume, request_kind):
    request = {"scale": (2.0, 1.0, 3.0)} if request_kind == "scale" else {"spacing": (0.45, 1.1, 1.0)}
    before = oblique_volume.array.copy()
    outputs = process(oblique_volume, JobOptions(method="interpolation", **request))
    expected = target_grid(oblique_volume.grid, scale=(2.0, 1.0, 3.0))
    assert outputs.sr.grid.matches(expected, tolerance_mm=1e-9)
    assert outputs.sr.array.shape == (40, 18, 36)
    assert outputs.variance is None and outputs.lesion_filled is None
    np.testing.assert_array_equal(oblique_volume.array, before)  # the input is never modified
    assert outputs.report["output_grid"]["size"] == [40, 18, 36]


def test_lesion_fill_changes_only_masked_voxels():
    volume = make_volume(shape=(24, 24, 24), spacing=(1, 1, 1), direction=np.eye(3))
    mask = np.zeros(volume.grid.size, bool)
    mask[10:14, 9:15, 11:13] = True
    outputs = process(volume, JobOptions(method="interpolation", scale=(1, 1, 1)), lesion_mask=mask)
    filled, sr = outputs.lesion_filled.array, outputs.sr.array
    np.testing.assert_array_equal(filled[~mask], sr[~mask])
    assert not np.allclose(filled[mask], sr[mask])
    low, high = sr[~mask].min(), sr[~mask].max()
    assert filled[mask].min() >= low - 1 and filled[mask].max() <= high + 1


def test_out_of_memory_becomes_a_resource_error(oblique_volume, monkeypatch):
    from inference_backend.errors import ResourceError
    from inference_backend.registry import METHODS

    def exhausted(request):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(type(METHODS["interpolation"]), "runner", lambda self: exhausted)
    with pytest.raises(ResourceError, match="ran out of memory"):
        process(oblique_volume, JobOptions(method="interpolation", scale=(1, 1, 2)))


def three_tissue_phantom() -> np.ndarray:
    """Background 0, 'CSF' 30, 'grey' 80, 'white' 120 in nested shells."""
    grid = np.meshgrid(*[np.linspace(-1, 1, 40)] * 3, indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grid))
    image = np.select([radius < 0.5, radius < 0.7, radius < 0.8], [120.0, 80.0, 30.0], 0.0)
    return (image + np.random.default_rng(0).normal(0, 2, image.shape)).astype(np.float32)


def test_nawm_mean_fill_uses_white_matter_intensity():
    from inference_backend.methods.lesion_fill import fill_nawm_mean

    image = three_tissue_phantom()
    mask = np.zeros(image.shape, bool)
    mask[18:22, 18:22, 18:22] = True
    image_with_lesion = image.copy()
    image_with_lesion[mask] = 300.0  # a bright lesion must not bias the fill
    filled = fill_nawm_mean(image_with_lesion, mask)
    assert filled[mask].mean() == pytest.approx(120.0, abs=2.0)
    np.testing.assert_array_equal(filled[~mask], image_with_lesion[~mask])


def test_dilate_mask_respects_anisotropic_spacing():
    from inference_backend.methods.lesion_fill import dilate_mask

    grid = Grid((21, 21, 21), (1.0, 1.0, 3.0), (0, 0, 0), np.eye(3))
    mask = np.zeros(grid.size, bool)
    mask[10, 10, 10] = True
    grown = dilate_mask(mask, grid, 3.0)
    assert grown[13, 10, 10] and not grown[14, 10, 10]  # 3 voxels of 1 mm
    assert grown[10, 10, 11] and not grown[10, 10, 12]  # 1 voxel of 3 mm
    assert dilate_mask(mask, grid, 0) is mask


def test_lesion_fill_options_are_validated(oblique_volume):
    from inference_backend.errors import InputError

    mask = np.zeros(oblique_volume.grid.size, bool)
    mask[5:8, 5:8, 3:5] = True
    with pytest.raises(InputError, match="lesion-fill"):
        process(oblique_volume, JobOptions(scale=(1, 1, 1), lesion_fill="magic"), lesion_mask=mask)
    outputs = process(oblique_volume, JobOptions(scale=(1, 1, 1), lesion_fill="nawm-mean", dilate_mask_mm=1.0), lesion_mask=mask)
    assert outputs.report["lesion_fill"] == {"method": "nawm-mean", "dilate_mm": 1.0}
    changed = outputs.lesion_filled.array != outputs.sr.array
    assert changed.sum() > mask.sum()  # the dilated mask was filled
