"""Does a variance map mean what it says? Gaussian intervals from the per-voxel standard
deviation against the true error, and the conformal scale that makes them hold on data the
evaluation never uses (stored in the model card, applied at inference:
:mod:`inference_backend.methods.variance_calibration`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from inference_backend.evaluation.metrics import data_range

LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def standardised_errors(reference: np.ndarray, mean: np.ndarray, variance: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """|error| / std per masked voxel (a voxel of zero spread counts as infinitely far off)."""
    std = np.sqrt(np.maximum(variance[mask].astype(np.float64), 0.0))
    error = np.abs(mean[mask].astype(np.float64) - reference[mask])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, error / std, np.where(error > 0, np.inf, 0.0))


def standardised_errors_of_runs(reference: np.ndarray, runs: list[tuple[np.ndarray, np.ndarray]], mask: np.ndarray) -> np.ndarray:
    """:func:`standardised_errors` of several (mean, variance) estimates of one reference, together."""
    return np.concatenate([standardised_errors(reference, mean, variance, mask) for mean, variance in runs])


def coverage(reference: np.ndarray, mean: np.ndarray, variance: np.ndarray, mask: np.ndarray, level: float = 0.9) -> float:
    """Fraction of voxels whose truth lies within the central Gaussian ``level`` interval
    (mean +- z sigma; 1.645 sigma for 90%)."""
    return float(np.mean(standardised_errors(reference, mean, variance, mask) <= stats.norm.ppf(0.5 + level / 2)))


def reliability(reference: np.ndarray, mean: np.ndarray, variance: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    """(nominal level, observed coverage) at each of :data:`LEVELS`: the reliability diagram."""
    z = standardised_errors(reference, mean, variance, mask)
    return [(level, float(np.mean(z <= stats.norm.ppf(0.5 + level / 2)))) for level in LEVELS]


def gaussian_nll(reference: np.ndarray, mean: np.ndarray, variance: np.ndarray, mask: np.ndarray) -> float:
    """Mean negative log-likelihood (nats) of the truth under N(mean, variance), intensities in
    units of the reference's masked range (so cases compare); the variance floored at 1e-8."""
    span = data_range(reference, mask)
    var = np.maximum(variance[mask].astype(np.float64) / span**2, 1e-8)
    error = (mean[mask].astype(np.float64) - reference[mask]) / span
    return float(np.mean(0.5 * np.log(2 * np.pi * var) + error**2 / (2 * var)))


def interval_scale(standardised: np.ndarray, level: float = 0.9) -> float:
    """The factor c on the standard deviation that puts ``level`` of these standardised errors
    within z c (split conformal: their ``level`` quantile over the Gaussian's z)."""
    return float(np.quantile(standardised[np.isfinite(standardised)], level) / stats.norm.ppf(0.5 + level / 2))


def subset_statistics(samples: np.ndarray, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mean, unbiased variance) of each disjoint run of ``count`` consecutive samples (axis 0):
    what a job of ``count`` samples would have given, as many times as the samples allow."""
    groups = [samples[start : start + count] for start in range(0, len(samples) - count + 1, count)]
    return [(group.mean(axis=0), group.var(axis=0, ddof=1)) for group in groups]


def reliability_diagram(path: Path, curves: dict[str, list[tuple[float, float]]], title: str) -> None:
    """Observed against nominal coverage per curve; the diagonal is a variance that means what it says."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.2, 4.2))
    axes.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="calibrated")
    for label, curve in curves.items():
        axes.plot(*zip(*curve), marker="o", label=label)
    axes.set(xlabel="nominal coverage of mean ± z σ", ylabel="observed coverage", xlim=(0, 1), ylim=(0, 1), title=title)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
