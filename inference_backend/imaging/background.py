"""What a result may hold where the scan could not have: a magnitude image has no negative
intensities, and a skull-stripped scan's background, exactly 0, is no signal to invent."""
from __future__ import annotations

import numpy as np

from inference_backend.imaging.head import head_mask
from inference_backend.imaging.resampling import resample
from inference_backend.imaging.volume import Grid, Volume

ALL_NEIGHBOURS = 1.0 - 1e-6  # the linearly interpolated indicator of "every neighbour is 0"


def zero_background(acquired: Volume, target: Grid) -> np.ndarray | None:
    """The output voxels whose every input neighbour is exactly 0 and outside the head (a
    skull-stripped scan's background); None where the input has no such voxel."""
    outside = (acquired.array == 0) & ~head_mask(acquired.array.astype(np.float32))
    if not outside.any():
        return None
    indicator = resample(acquired.with_array(outside.astype(np.float32)), target, "linear").array
    return indicator >= ALL_NEIGHBOURS


def physical(result: np.ndarray, acquired: Volume, background: np.ndarray | None) -> np.ndarray:
    """``result`` with no negative intensity where the input has none, and 0 on ``background``."""
    if float(acquired.array.min()) >= 0:
        result = np.maximum(result, 0)
    if background is not None:
        result = np.where(background, 0, result).astype(result.dtype)
    return result
