"""What a method receives and returns: the contract between the pipeline and every method."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference_backend.imaging.volume import Grid, Volume
from inference_backend.methods.options import MethodOptions
from inference_backend.progress import Progress


@dataclass
class MethodRequest:
    """One super-resolution job: the LR volume (float32), the HR grid, and how to run."""

    volume: Volume
    target: Grid
    options: MethodOptions
    progress: Progress
    samples: int = 1
    seed: int = 0
    device: str = "cpu"
    keep_samples: bool = False  # return every sample (for calibration metrics), not only mean/variance
    slice_thickness: float | None = None  # mm, a thick-slice scan's along its slice axis; None: equal to the slice spacing

    def relative_thickness(self) -> tuple[float, float, float]:
        """Per axis, the slice thickness over the slice spacing that the thick-slice forward
        models use: 1 (slices as thick as their spacing) except along the one refined axis when
        the thickness is known (below 1: a gap between the slices; above: overlapping slices)."""
        from inference_backend.imaging.target import refined_axes

        ratios = [1.0, 1.0, 1.0]
        axes = refined_axes(self.volume.grid, self.target)
        if self.slice_thickness is not None and len(axes) == 1:
            ratios[axes[0]] = self.slice_thickness / self.volume.grid.spacing[axes[0]]
        return (ratios[0], ratios[1], ratios[2])


@dataclass
class ModelInfo:
    """Identity of the weights a result came from (for reports and reproducibility)."""

    name: str
    sha256: str
    card: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodResult:
    """The HR estimate (the mean over samples) and, for stochastic methods, the variance."""

    volume: Volume
    variance: Volume | None = None
    model: ModelInfo | None = None
    samples: np.ndarray | None = None  # (samples, X, Y, Z) when the request kept them
    resolved: dict[str, Any] = field(default_factory=dict)  # what "auto" options became, for the report
