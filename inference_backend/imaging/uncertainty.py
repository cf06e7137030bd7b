"""The variance map as a radiologist reads it: the standard deviation in percent of the head's
median intensity (one scale for every contrast and scanner), zero outside the head, and the
level from which a voxel's uncertainty is notable enough to tint.

A diffusion model is a little unsure everywhere (its calibrated SD is several % of the
intensity across the whole head), so a fixed level tints either the whole brain or nothing:
the level is relative to the result's own typical uncertainty, never below a floor (chosen on
the development scans: benchmarks/results/studies/trust-maps)."""
from __future__ import annotations

import numpy as np

from inference_backend.imaging.head import head_mask

NOTABLE_SD_MULTIPLE = 1.5  # tint where 1 SD is at least this many times the head's median SD
NOTABLE_SD_FLOOR_PERCENT = 5.0  # and at least this share of the head's median intensity


def sd_percent(variance: np.ndarray, result: np.ndarray) -> np.ndarray:
    """The standard deviation of each voxel in % of the median intensity inside the result's
    head (float32); 0 outside the head."""
    head = head_mask(result.astype(np.float32))
    reference = float(np.median(result[head])) if head.any() else 0.0
    if reference <= 0:
        return np.zeros(variance.shape, np.float32)
    percent = np.sqrt(np.maximum(variance, 0)) * (100.0 / reference)
    return np.where(head, percent, 0).astype(np.float32)


def notable_level(percent: np.ndarray) -> float:
    """The SD (in % of the head's median intensity) from which :func:`sd_percent`'s map is
    tinted: :data:`NOTABLE_SD_MULTIPLE` times its median over the head (the map's non-zero
    voxels), and at least :data:`NOTABLE_SD_FLOOR_PERCENT`."""
    inside = percent[percent > 0]
    typical = float(np.median(inside)) if inside.size else 0.0
    return max(NOTABLE_SD_FLOOR_PERCENT, NOTABLE_SD_MULTIPLE * typical)


def tint_range(percent: np.ndarray) -> tuple[float, float]:
    """The colour range of a picture of the map: from the notable level to twice it."""
    level = notable_level(percent)
    return level, 2 * level
