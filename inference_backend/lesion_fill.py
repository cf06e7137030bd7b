"""Lesion filling: replace the voxels inside a lesion mask with plausible healthy tissue.

Only voxels inside the mask ever change. Two classical fills users know, the references for
generative fills (which plug in through the same :func:`fill_lesion` entry point):

* ``neighbourhood``: biharmonic inpainting from the surrounding tissue (scikit-image), a
  smooth continuation of the intensities around the lesion;
* ``nawm-mean``: the mean intensity of normal-appearing white matter around the lesion,
  white matter being the brightest of three tissue classes (multi-Otsu; T1-weighted images).
"""
from __future__ import annotations

import numpy as np

from inference_backend.resampling import resample
from inference_backend.volume import Grid, Volume


def mask_on_grid(mask: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """Carry a binary mask onto another grid (linear interpolation of the indicator, >= 0.5)."""
    if source.matches(target):
        return mask
    indicator = Volume(mask.astype(np.float32), source)
    return resample(indicator, target, "linear").array >= 0.5


def bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """The mask's bounding box grown by ``margin`` voxels, clipped to the array."""
    nonzero = np.nonzero(mask)
    return tuple(
        slice(max(0, int(index.min()) - margin), min(size, int(index.max()) + margin + 1))
        for index, size in zip(nonzero, mask.shape)
    )


def fill_neighbourhood(array: np.ndarray, mask: np.ndarray, margin: int = 4) -> np.ndarray:
    """Biharmonic inpainting of the masked voxels from a margin of surrounding tissue."""
    from skimage.restoration import inpaint_biharmonic

    box = bounding_box(mask, margin)
    filled = array.astype(np.float32, copy=True)
    filled[box] = inpaint_biharmonic(filled[box], mask[box])
    filled[~mask] = array[~mask]  # bit-exact outside the mask
    return filled


def fill_nawm_mean(array: np.ndarray, mask: np.ndarray, shell_voxels: int = 12) -> np.ndarray:
    """Masked voxels set to the mean white-matter intensity in a shell around the lesion."""
    from scipy import ndimage
    from skimage.filters import threshold_multiotsu, threshold_otsu

    shell = ndimage.binary_dilation(mask, iterations=shell_voxels) & ~mask
    healthy = array[~mask]
    foreground = healthy[healthy > threshold_otsu(healthy)]  # head tissue: CSF, grey, white
    white_matter_floor = threshold_multiotsu(foreground, classes=3)[-1]
    normal = shell & (array >= white_matter_floor)
    if not normal.any():
        normal = ~mask & (array >= white_matter_floor)
    filled = array.astype(np.float32, copy=True)
    filled[mask] = float(array[normal].mean())
    return filled


FILLS = {"neighbourhood": fill_neighbourhood, "nawm-mean": fill_nawm_mean}


def dilate_mask(mask: np.ndarray, grid: Grid, millimetres: float) -> np.ndarray:
    """Grow the mask by a distance in mm (anisotropic voxels respected)."""
    if millimetres <= 0:
        return mask
    from scipy import ndimage

    return ndimage.distance_transform_edt(~mask, sampling=grid.spacing) <= millimetres


def fill_lesion(volume: Volume, mask: np.ndarray, method: str = "neighbourhood") -> Volume:
    """The volume with its lesion filled (``mask`` lies on ``volume.grid``)."""
    return volume.with_array(FILLS[method](volume.array, mask))
