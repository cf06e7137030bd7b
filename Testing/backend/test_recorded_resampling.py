"""ITK's resamplings recorded on one machine and served on another (benchmarks/gpu_check.py):
served exactly, refused when the record lacks them, ITK's own back afterwards."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import make_volume
from inference_backend.evaluation.recorded_resampling import grid_from, grid_record, recorded_resampling
from inference_backend.imaging import resampling
from inference_backend.imaging.target import target_grid
from inference_backend.methods import slice_sampling


def test_a_recorded_resampling_is_served_exactly_and_an_unrecorded_one_refused():
    volume = make_volume()
    target = target_grid(volume.grid, scale=(1.0, 1.0, 3.0))
    itk = resampling.resample(volume, target, "bspline").array
    answers: dict[str, np.ndarray] = {}
    with recorded_resampling(answers, record=True):
        recorded = slice_sampling.resample(volume, target, "bspline").array  # a module's own binding
        matrix = resampling.bspline_upsampling_matrix(6, 3)
    assert len(answers) == 2
    np.testing.assert_array_equal(recorded, itk)
    with recorded_resampling(answers, record=False):
        np.testing.assert_array_equal(slice_sampling.resample(volume, target, "bspline").array, itk)
        np.testing.assert_array_equal(resampling.bspline_upsampling_matrix(6, 3), matrix)
        with pytest.raises(LookupError, match="linear"):
            slice_sampling.resample(volume, target, "linear")
        with pytest.raises(LookupError):
            slice_sampling.resample(volume.with_array(volume.array + 1), target, "bspline")
    assert slice_sampling.resample is resampling.resample
    assert resampling.resample.__module__ == resampling.__name__


def test_grids_survive_their_record():
    grid = make_volume().grid
    again = grid_from(grid_record(grid))
    assert (again.size, again.spacing, again.origin) == (grid.size, grid.spacing, grid.origin)
    np.testing.assert_array_equal(again.direction, grid.direction)
