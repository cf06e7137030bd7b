"""Output grids (where the new voxel centres lie) and the slice engine's reassembly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import OBLIQUE, make_volume
from inference_backend.errors import InputError, ResourceError
from inference_backend.imaging.target import parse_triplet, target_grid
from inference_backend.imaging.validation import check_voxel_budget
from inference_backend.imaging.volume import Grid
from inference_backend.methods.slicing import SliceBatch, SlicePlan, run_slices
from inference_backend.progress import Progress


def test_thick_slice_centres_are_tiled_by_thin_slices():
    """x4 along k: thin-slice centres at thick centre -1.5, -0.5, +0.5, +1.5 mm (spacing 4 -> 1)."""
    grid = Grid((5, 6, 3), (1.0, 1.0, 4.0), (10.0, 20.0, 30.0), OBLIQUE)
    fine = target_grid(grid, scale=(1, 1, 4))
    assert fine.size == (5, 6, 12)
    assert fine.spacing == (1.0, 1.0, 1.0)
    k_axis = OBLIQUE[:, 2]
    for thick in range(3):
        thick_centre = grid.index_to_physical([0, 0, thick])
        for q, offset in enumerate([-1.5, -0.5, 0.5, 1.5]):
            thin_centre = fine.index_to_physical([0, 0, 4 * thick + q])
            np.testing.assert_allclose(thin_centre, thick_centre + offset * k_axis, atol=1e-9)
    np.testing.assert_allclose(fine.center(), grid.center(), atol=1e-9)


def test_target_spacing_keeps_field_of_view_centre():
    grid = Grid((10, 10, 7), (1.0, 1.0, 3.3), (0.0, 0.0, 0.0), np.eye(3))
    fine = target_grid(grid, spacing=(1.0, 1.0, 1.0))
    assert fine.size == (10, 10, 23)  # round(7 * 3.3 / 1)
    np.testing.assert_allclose(fine.center(), grid.center(), atol=1e-9)
    np.testing.assert_allclose(fine.index_to_physical([0, 0, 0])[2], 3.3 * 3 - 11.0)


def test_scale_and_spacing_give_the_same_grid():
    grid = make_volume().grid
    by_scale = target_grid(grid, scale=(1, 2, 3))
    by_spacing = target_grid(grid, spacing=(0.9, 0.55, 1.0))
    assert by_scale.matches(by_spacing, tolerance_mm=1e-9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scale": (1, 1, 0)}, "positive"),
        ({"scale": (1, 1, 0.5)}, "below 1"),
        ({"spacing": (1, 1, 8)}, "already finer than the target"),
        ({"spacing": (1, 1, -1)}, "positive"),
        ({}, "exactly one"),
    ],
)
def test_target_grid_rejects_bad_requests(kwargs, message):
    grid = Grid((4, 4, 4), (1.0, 1.0, 4.0), (0, 0, 0), np.eye(3))
    with pytest.raises(InputError, match=message):
        target_grid(grid, **kwargs)


def test_parse_triplet():
    assert parse_triplet("1,1,4", "--scale") == (1.0, 1.0, 4.0)
    assert parse_triplet("2", "--scale") == (2.0, 2.0, 2.0)
    with pytest.raises(InputError):
        parse_triplet("1,nan,2", "--scale")
    with pytest.raises(InputError):
        parse_triplet("a,b", "--scale")


def test_voxel_budget():
    grid = Grid((100, 100, 100), (1, 1, 1), (0, 0, 0), np.eye(3))
    check_voxel_budget(grid, "output", budget=10**6)
    with pytest.raises(ResourceError, match="budget"):
        check_voxel_budget(grid, "output", budget=10**6 - 1)


def test_plan_picks_planes_that_contain_the_coarse_axis():
    source = Grid((8, 8, 4), (1, 1, 4), (0, 0, 0), np.eye(3))
    through = SlicePlan.between(source, target_grid(source, scale=(1, 1, 4)))
    assert through.coarse_axes == (2,) and through.slice_axes == (0, 1)
    assert through.in_plane_axes(0) == (1, 2) and through.in_plane_axes(1) == (0, 2)  # coarse axis last
    in_plane = SlicePlan.between(source, target_grid(source, scale=(2, 2, 1)))
    assert in_plane.coarse_axes == (0, 1) and in_plane.slice_axes == (2,)
    coarse_first = SlicePlan.between(Grid((4, 8, 8), (4, 1, 1), (0, 0, 0), np.eye(3)), Grid((16, 8, 8), (1, 1, 1), (0, 0, 0), np.eye(3)))
    assert coarse_first.slice_axes == (1, 2) and coarse_first.in_plane_axes(1) == (2, 0)


def test_identity_model_reassembles_the_volume_exactly():
    volume = make_volume(shape=(9, 7, 13)).array
    plan = SlicePlan((2,), (0, 1), (1.0, 1.0, 4.0))
    result = run_slices(volume, plan, lambda batch: batch.images, batch_size=4, progress=Progress(), multiple=16)
    np.testing.assert_array_equal(result, volume)


def test_slices_reach_the_model_with_the_coarse_axis_last():
    """A model that writes each pixel's W index back must yield a volume varying along the coarse axis only."""
    shape = (6, 5, 9)
    plan = SlicePlan((2,), (0, 1), (1.0, 1.0, 3.0))

    def column_index(batch: SliceBatch) -> torch.Tensor:
        images = batch.images
        return torch.arange(images.shape[-1], dtype=images.dtype).expand_as(images).clone()

    result = run_slices(np.zeros(shape, np.float32), plan, column_index, batch_size=2, progress=Progress(), multiple=1)
    expected = np.broadcast_to(np.arange(shape[2], dtype=np.float32), shape)
    np.testing.assert_array_equal(result, expected)


def test_a_context_model_receives_the_neighbouring_slices_clipped_at_the_ends():
    volume = np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32)
    plan = SlicePlan((2,), (0,), (1.0, 1.0, 2.0))  # one orientation: slices along axis 0

    def neighbours_mean(batch: SliceBatch) -> torch.Tensor:
        assert batch.context.shape == (batch.images.shape[0], 4, *batch.images.shape[-2:])
        return batch.context.mean(dim=1, keepdim=True)

    result = run_slices(volume, plan, neighbours_mean, batch_size=2, progress=Progress(), multiple=4, context=2)
    indices = np.clip(np.arange(5)[:, None] + [-2, -1, 1, 2], 0, 4)
    np.testing.assert_allclose(result, volume[indices].mean(axis=1), atol=1e-6)


def test_slice_engine_reports_progress_to_one():
    seen = []
    progress = Progress([lambda fraction, stage, message: seen.append(fraction)])
    run_slices(np.ones((4, 4, 4), np.float32), SlicePlan((2,), (0, 1), (1.0, 1.0, 2.0)), lambda b: b.images, 3, progress)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_a_spacing_target_is_a_ceiling():
    """1 mm asked of a 0.69 x 0.69 x 3 mm scan refines its slices and keeps its finer pixels."""
    from inference_backend.job import JobOptions
    from inference_backend.plan import plan_job

    grid = Grid((64, 64, 12), (0.69, 0.69, 3.0), (0, 0, 0), np.eye(3))
    assert target_grid(grid, spacing=(1.0, 1.0, 1.0)).spacing == (0.69, 0.69, 1.0)
    plan = plan_job(grid, JobOptions(spacing=(1.0, 1.0, 1.0)))
    assert plan.acquisition == "thick-slices" and plan.report()["spacing_kept"] == "x, y kept at 0.69, 0.69 mm: finer than the 1, 1 mm target"
    assert "spacing_kept" not in plan_job(grid, JobOptions(spacing=(0.5, 0.5, 1.0))).report()


def test_the_command_line_says_which_axes_a_spacing_target_kept(tmp_path, capsys):
    from inference_backend.cli import main
    from inference_backend.imaging.io import write_volume

    path = tmp_path / "scan.nii.gz"
    write_volume(make_volume(shape=(16, 16, 6), spacing=(0.69, 0.69, 3.0), direction=np.eye(3)), path)
    assert main(["run", str(path), "--method", "interpolation", "--spacing", "1", "--out", str(tmp_path / "out"), "--progress", "none"]) == 0
    assert "mrisr: note: x, y kept at 0.69, 0.69 mm: finer than the 1, 1 mm target" in capsys.readouterr().err.splitlines()
