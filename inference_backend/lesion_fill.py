"""Lesion filling: replace the voxels inside a lesion mask with plausible healthy tissue.

Only voxels inside the mask ever change. The neighbourhood fill here (biharmonic inpainting
from the surrounding tissue, scikit-image) is the classical reference; generative fills plug
in through the same :func:`fill_lesion` entry point.
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


def fill_lesion(volume: Volume, mask: np.ndarray) -> Volume:
    """The volume with its lesion filled (``mask`` lies on ``volume.grid``)."""
    return volume.with_array(fill_neighbourhood(volume.array, mask))
