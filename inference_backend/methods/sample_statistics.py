"""Per-voxel mean and variance over the samples of a stochastic method (Welford's update)."""
from __future__ import annotations

import numpy as np


class SampleStatistics:
    """Accumulates samples one at a time in float64; memory stays at two volumes (+ kept samples)."""

    def __init__(self, keep_samples: bool = False) -> None:
        self.count = 0
        self._mean: np.ndarray | None = None
        self._squares: np.ndarray | None = None
        self.kept: list[np.ndarray] = [] if keep_samples else None  # type: ignore[assignment]

    def add(self, sample: np.ndarray) -> None:
        sample = sample.astype(np.float64)
        self.count += 1
        if self._mean is None:
            self._mean, self._squares = sample.copy(), np.zeros_like(sample)
        else:
            delta = sample - self._mean
            self._mean += delta / self.count
            self._squares += delta * (sample - self._mean)
        if self.kept is not None:
            self.kept.append(sample.astype(np.float32))

    @property
    def mean(self) -> np.ndarray:
        assert self._mean is not None, "no sample was added"
        return self._mean.astype(np.float32)

    @property
    def variance(self) -> np.ndarray | None:
        """Unbiased per-voxel variance; None for a single sample (no spread to measure)."""
        if self.count < 2:
            return None
        return (self._squares / (self.count - 1)).astype(np.float32)

    @property
    def samples(self) -> np.ndarray | None:
        return np.stack(self.kept) if self.kept else None
