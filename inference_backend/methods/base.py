"""What a method receives and returns: the contract between the pipeline and every method."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference_backend.imaging.target import Refinement
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.methods.options import MethodOptions
from inference_backend.progress import Progress


@dataclass
class MethodRequest:
    """One super-resolution job as its plan worked it out: the LR volume (float32), what to
    refine (the output grid, the refined axes, the slice thickness), the method's options (its
    model resolved), and how to run."""

    volume: Volume
    refinement: Refinement
    options: MethodOptions
    progress: Progress
    samples: int = 1
    seed: int = 0
    device: str = "cpu"
    keep_samples: bool = False  # return every sample (for calibration metrics), not only mean/variance

    @property
    def target(self) -> Grid:
        return self.refinement.target

    def relative_thickness(self) -> tuple[float, float, float]:
        return self.refinement.relative_thickness()


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
