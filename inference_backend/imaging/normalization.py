"""The intensity normalisation of the learned methods, and its exact inverse.

MR intensities have no absolute scale, so each volume is mapped linearly so that its
background level (0.5th percentile) becomes -1 and the bright end of the tissue (99.5th
percentile of the voxels above background) becomes +1; the networks are trained on that range.
Values outside it are kept (not clipped) and the inverse map is applied to every output, so
results come back in the input's units. Variances scale by the square of the slope.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5
TISSUE_LEVEL = -0.8  # normalised intensity above which a voxel counts as tissue (background is -1)


@dataclass(frozen=True)
class IntensityNormalizer:
    low: float
    high: float

    @classmethod
    def fit(cls, array: np.ndarray) -> "IntensityNormalizer":
        low = float(np.percentile(array, LOW_PERCENTILE))
        above = array[array > low]
        high = float(np.percentile(above, HIGH_PERCENTILE)) if above.size else low + 1.0
        return cls(low, high if high > low else low + 1.0)

    @property
    def slope(self) -> float:
        """Output units per normalised unit."""
        return (self.high - self.low) / 2.0

    def forward(self, array: np.ndarray) -> np.ndarray:
        return ((array - self.low) / self.slope - 1.0).astype(np.float32)

    def inverse(self, array: np.ndarray) -> np.ndarray:
        return ((array + 1.0) * self.slope + self.low).astype(np.float32)

    def inverse_variance(self, variance: np.ndarray) -> np.ndarray:
        return (variance * self.slope**2).astype(np.float32)
