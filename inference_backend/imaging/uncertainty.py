"""The variance map as a radiologist reads it: the standard deviation in percent of the head's
median intensity (one scale for every contrast and scanner), zero outside the head, and the
level from which a voxel's uncertainty is notable enough to tint (chosen on the development
scans: benchmarks/results/studies/uncertainty-overlay)."""
from __future__ import annotations

import numpy as np

from inference_backend.imaging.head import head_mask

NOTABLE_SD_PERCENT = 5.0  # tint where 1 SD is at least this share of the head's median intensity


def sd_percent(variance: np.ndarray, result: np.ndarray) -> np.ndarray:
    """The standard deviation of each voxel in % of the median intensity inside the result's
    head (float32); 0 outside the head."""
    head = head_mask(result.astype(np.float32))
    reference = float(np.median(result[head])) if head.any() else 0.0
    if reference <= 0:
        return np.zeros(variance.shape, np.float32)
    percent = np.sqrt(np.maximum(variance, 0)) * (100.0 / reference)
    return np.where(head, percent, 0).astype(np.float32)
