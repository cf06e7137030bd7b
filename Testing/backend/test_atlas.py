"""The atlas brain mask: the template, moved onto an oblique, anisotropic grid it does not know,
gets its own brain mask back through the registration."""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from conftest import rotation
from inference_backend.data.datasets import load_mni152, load_mni152_brain_mask
from inference_backend.evaluation.atlas import (
    atlas_brain_mask,
    register_affine,
    rough_brain,
)
from inference_backend.imaging.head import head_mask
from inference_backend.imaging.itk import from_sitk, to_sitk
from inference_backend.imaging.volume import Grid, Volume


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_atlas_mask_follows_a_moved_brain_onto_an_oblique_grid():
    """The anatomy is rotated, scaled and shifted (a head that is not the template's), then
    sampled on an oblique, anisotropic LPS grid; the mask must follow it."""
    template, brain = load_mni152(), load_mni152_brain_mask()
    anatomy = sitk.AffineTransform(3)
    anatomy.SetCenter(tuple(template.grid.center()))
    anatomy.SetMatrix(tuple((1.08 * rotation(np.array([0.2, 1.0, 0.4]), 15.0)).ravel()))
    anatomy.SetTranslation((12.0, -10.0, 8.0))
    direction = rotation(np.array([1.0, 0.3, 0.2]), 12.0) @ np.diag([-1.0, -1.0, 1.0])
    size, spacing = (90, 110, 80), (2.0, 2.0, 2.4)
    origin = template.grid.center() - direction @ (np.array(spacing) * (np.array(size) - 1) / 2)
    grid = Grid(size=size, spacing=spacing, origin=tuple(origin), direction=tuple(direction.ravel()))
    target = to_sitk(Volume(np.zeros(grid.size, np.float32), grid))

    def onto_grid(volume: Volume, transform: sitk.Transform) -> np.ndarray:
        return from_sitk(sitk.Resample(to_sitk(volume, np.float32), target, transform, sitk.sitkLinear, 0.0)).array

    template_brain = template.with_array(brain.astype(np.float32))
    scan = Volume(onto_grid(template, anatomy), grid)
    expected = onto_grid(template_brain, anatomy) > 0.5
    unmoved = onto_grid(template_brain, sitk.Transform()) > 0.5
    mask = atlas_brain_mask(scan)
    assert mask.shape == grid.size
    assert dice(unmoved, expected) < 0.85  # the motion matters: doing nothing would fail
    assert dice(mask, expected) > 0.93


def test_rough_brain_cuts_a_shell_off():
    """A bright shell (the scalp) a few voxels outside the brain is cut away, the brain kept."""
    brain = load_mni152().array[::2, ::2, ::2]
    inside = head_mask(brain)
    outer = ndimage.binary_dilation(inside, iterations=6) & ~ndimage.binary_dilation(inside, iterations=4)
    scan = brain + 150.0 * outer
    stripped = rough_brain(scan)
    assert (stripped & outer).sum() < 0.05 * outer.sum()
    assert dice(stripped, inside) > 0.85


def test_the_registration_gives_the_same_transform_every_run():
    """Benchmark scores inside the atlas mask must not change between runs: the metric samples
    at random (a fixed seed: SimpleITK reads 0 as the wall clock) and threads add in a varying
    order (one thread), so either would change the transform."""
    template = load_mni152()
    coarse = template.array[::3, ::3, ::3]
    grid = template.grid
    fixed = Volume(np.ascontiguousarray(coarse), Grid(coarse.shape, tuple(3 * s for s in grid.spacing), grid.origin, grid.direction))
    moving = fixed.with_array(np.roll(fixed.array, 2, axis=0))
    first, second = (np.array(register_affine(fixed, moving).GetParameters()) for _ in range(2))
    assert abs(first[9] + 6.0) < 0.5  # it found the 2-voxel (6 mm) shift along x
    np.testing.assert_array_equal(first, second)
