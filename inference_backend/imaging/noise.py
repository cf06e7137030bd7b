"""The noise level of an acquired volume, for results measured in its units.

Donoho's wavelet estimator: the finest diagonal (HH) Haar band of each acquired plane holds
almost only noise, and its median absolute value over the head, divided by 0.6745, is the
noise standard deviation. It needs no background (skull-stripped scans have none, only zeros)
and overestimates slightly where the anatomy has detail at the finest scale.
"""
from __future__ import annotations

import numpy as np
import pywt

MAD_TO_SD = 0.6745  # the median absolute deviation of a standard normal


def noise_sd(volume: np.ndarray, spacing: tuple[float, float, float], head: np.ndarray) -> float:
    """The noise standard deviation of ``volume`` within ``head``, from its planes perpendicular
    to its coarsest axis (a thick-slice scan's acquired slices); 0 where there is no head."""
    axis = int(np.argmax(spacing))
    planes = np.moveaxis(volume.astype(np.float64), axis, 0)
    inside = np.moveaxis(head, axis, 0)
    diagonal = pywt.dwt2(planes, "haar", axes=(1, 2))[1][2]
    within = inside[:, : 2 * diagonal.shape[1] : 2, : 2 * diagonal.shape[2] : 2]
    values = np.abs(diagonal[within])
    return float(np.median(values) / MAD_TO_SD) if values.size else 0.0
